//! Load-time template checks: syntax errors, and variables that no source
//! defines (inventory, play, role defaults, extra vars, an earlier `register`
//! or `set_fact`, a loop variable, or a magic variable), each reported with
//! `file:line:col` before any host is contacted.
//!
//! A template that guards itself (`default(...)`, `is defined`) is trusted:
//! this check must never reject a playbook Ansible would run.

use std::collections::HashSet;
use std::path::Path;

use serde_json::Value as Json;

use super::{Play, Task};
use crate::error::{SResult, SourceError, Span};
use crate::template::{is_template, Templates};

/// Variables every host has, whatever the inventory says.
pub const MAGIC: &[&str] = &[
    "inventory_hostname", "inventory_hostname_short", "group_names", "groups", "hostvars", "playbook_dir", "role_path",
    "ansible_check_mode", "ansible_diff_mode", "omit", "ansible_play_hosts", "ansible_play_batch", "recover_run_id", "recover_timestamp", "recover_binary",
    "range", "lookup", "query", "dict", "namespace", "cycler", "joiner", "lipsum", "now", "loop", "true", "false", "none",
    "True", "False", "None", "ansible_host", "ansible_user", "ansible_port", "ansible_managed",
];

/// Checks every template of `play` against the names in `known`.
pub fn check_undefined(play: &Play, known: &HashSet<String>, templates: &Templates, project_root: &Path, playbook_dir: &Path) -> SResult<()> {
    let mut known: HashSet<String> = known.clone();
    known.extend(MAGIC.iter().map(|s| s.to_string()));
    known.extend(play.vars.keys().cloned());
    known.extend(play.role_defaults.keys().cloned());
    for t in &play.tasks {
        if let Some(r) = &t.register {
            known.insert(r.clone());
        }
        if t.module == "set_fact" {
            if let Json::Object(m) = &t.args {
                known.extend(m.keys().cloned());
            }
        }
    }
    for task in play.tasks.iter().chain(play.handlers.iter()) {
        check_task(task, &known, templates, project_root, playbook_dir)?;
    }
    Ok(())
}

fn check_task(task: &Task, known: &HashSet<String>, t: &Templates, root: &Path, pdir: &Path) -> SResult<()> {
    let mut known = known.clone();
    known.extend(task.vars.keys().cloned());
    // `when: x is defined` guards the whole task: x may be used in it.
    static DEFINED: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let defined = DEFINED.get_or_init(|| regex::Regex::new(r"\b([A-Za-z_][A-Za-z0-9_]*)\s+is\s+defined\b").expect("static regex"));
    for c in &task.when {
        known.extend(defined.captures_iter(&c.expr).map(|m| m[1].to_string()));
    }
    if task.loop_items.is_some() {
        known.insert(task.loop_var.clone());
    }
    if let Some((items, span)) = &task.loop_items {
        check_json(items, span, &known, t)?;
    }
    for c in task.when.iter().chain(&task.changed_when).chain(&task.failed_when) {
        check_expr(&c.expr, &c.span, &known, t)?;
    }
    if let Json::Object(args) = &task.args {
        for (k, v) in args {
            check_json(v, &task.arg_span(k), &known, t)?;
        }
        if task.module == "assert" {
            let span = task.arg_span("that");
            match args.get("that") {
                Some(Json::String(e)) => check_expr(e, &span, &known, t)?,
                Some(Json::Array(items)) => {
                    for e in items.iter().filter_map(Json::as_str) {
                        check_expr(e, &span, &known, t)?;
                    }
                }
                _ => {}
            }
        }
        if task.module == "template" {
            if let Some(Json::String(src)) = args.get("src") {
                if !is_template(src) {
                    if let Some(path) = crate::modules::find_src(src, task, pdir, root) {
                        if let Ok(text) = std::fs::read_to_string(&path) {
                            check_file(&text, &path, &known, t)?;
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

fn check_json(v: &Json, span: &Span, known: &HashSet<String>, t: &Templates) -> SResult<()> {
    match v {
        Json::String(s) if is_template(s) => check_text(s, span, known, t),
        Json::Array(items) => items.iter().try_for_each(|i| check_json(i, span, known, t)),
        Json::Object(m) => m.values().try_for_each(|i| check_json(i, span, known, t)),
        _ => Ok(()),
    }
}

/// Does the template handle undefined values itself (`is defined`, `default(...)`, `| d(...)`)?
fn guarded(text: &str) -> bool {
    static GUARD: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    GUARD
        .get_or_init(|| regex::Regex::new(r"\bis\s+(not\s+)?(un)?defined\b|\|\s*(default|d)\b|\bdefault\s*\(|\bmandatory\b|\bvars\[").expect("static regex"))
        .is_match(text)
}

fn check_text(text: &str, span: &Span, known: &HashSet<String>, t: &Templates) -> SResult<()> {
    let names = t.undeclared(text).map_err(|e| crate::template::located(&e, span))?;
    report(names, text, span, known)
}

fn check_expr(expr: &str, span: &Span, known: &HashSet<String>, t: &Templates) -> SResult<()> {
    let inner = expr.trim();
    let inner = inner.strip_prefix("{{").and_then(|e| e.strip_suffix("}}")).unwrap_or(inner);
    check_text(&format!("{{{{ {inner} }}}}"), span, known, t)
}

fn check_file(text: &str, path: &Path, known: &HashSet<String>, t: &Templates) -> SResult<()> {
    let file_span = Span::file(path);
    let names = t.undeclared(text).map_err(|e| {
        let mut s = crate::template::located(&e, &Span { line: 1, col: 1, ..file_span.clone() });
        if e.line().is_none() {
            s.span = file_span.clone();
        }
        s
    })?;
    for name in names {
        if known.contains(&name) {
            continue;
        }
        // Report at the first line that uses it unguarded.
        let hit = text.lines().enumerate().find(|(_, l)| l.contains(&name) && !guarded(l));
        if let Some((i, line)) = hit {
            let col = line.find(&name).unwrap_or(0) + 1;
            let span = Span { line: i + 1, col, ..file_span.clone() };
            return Err(SourceError::new(span, format!("undefined variable '{name}' in template")).help(define_help(&name)));
        }
    }
    Ok(())
}

fn report(names: HashSet<String>, text: &str, span: &Span, known: &HashSet<String>) -> SResult<()> {
    if guarded(text) {
        return Ok(());
    }
    let mut missing: Vec<String> = names.into_iter().filter(|n| !known.contains(n)).collect();
    missing.sort();
    match missing.first() {
        None => Ok(()),
        Some(name) => Err(SourceError::new(span.clone(), format!("undefined variable '{name}' in `{}`", text.trim())).help(define_help(name))),
    }
}

fn define_help(name: &str) -> String {
    format!("define '{name}' in the inventory, the play's vars or a role's defaults, or pass -e {name}=VALUE")
}
