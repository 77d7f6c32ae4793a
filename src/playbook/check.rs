//! Load-time template checks: syntax errors, and variables that no source
//! defines (inventory, play, role defaults, extra vars, an earlier `register`
//! or `set_fact`, a loop variable, or a magic variable), each reported with
//! `file:line:col` before any host is contacted.
//!
//! A template that guards itself (`default(...)`, `is defined`) is trusted:
//! this check must never reject a playbook Ansible would run. So a mistake is an error only
//! where the task certainly runs (no `when`, no loop, no `ignore_errors`, not in a rescue, a
//! block with a rescue, a handler or a conditional include, no tag selection, no `meta: end_*`
//! before it) and evaluates the template (its arguments): ansible-core would fail there too.
//! Everywhere else it is a warning with file:line:col, and the template fails, by that name,
//! where it is evaluated.

use std::collections::HashSet;
use std::path::Path;

use serde_json::Value as Json;

use super::{Catalog, Play, Task};
use crate::error::{SResult, SourceError, Span};
use crate::template::{is_template, Templates};

/// Variables every host has, whatever the inventory says.
pub const MAGIC: &[&str] = &[
    "inventory_hostname", "inventory_hostname_short", "group_names", "groups", "hostvars", "playbook_dir", "role_path",
    "ansible_check_mode", "ansible_diff_mode", "omit", "ansible_play_hosts", "ansible_play_batch", "recover_run_id", "recover_timestamp", "recover_binary",
    "range", "lookup", "query", "q", "undef", "dict", "namespace", "cycler", "joiner", "lipsum", "now", "loop", "true", "false", "none",
    "True", "False", "None", "ansible_host", "ansible_user", "ansible_port", "ansible_managed", "role_name", "ansible_loop",
    "ansible_index_var", "ansible_loop_var", "ansible_failed_task", "ansible_failed_result", "inventory_dir", "inventory_file",
    "ansible_version", "ansible_facts", "ansible_play_batch", "ansible_play_hosts_all", "play_hosts", "ansible_role_name",
    "ansible_parent_role_names", "ansible_parent_role_paths", "ansible_run_tags", "ansible_skip_tags", "ansible_playbook_python",
    "ansible_config_file", "ansible_verbosity", "ansible_forks", "ansible_inventory_sources", "ansible_limit", "groups",
    "ansible_search_path", "ansible_local", "role_names", "ansible_play_name", "ansible_dependent_role_names", "ansible_role_names", "ansible_play_role_names",
];

/// Checks every template of `play` against the names in `known`; gives the names its tasks
/// define for the host (set_fact, register, ...), which later plays see too.
pub fn check_undefined(play: &Play, catalog: &dyn Catalog, known: &HashSet<String>, templates: &Templates, project_root: &Path, playbook_dir: &Path) -> SResult<HashSet<String>> {
    check_play(play, catalog, known, templates, project_root, playbook_dir, true)
}

/// [`check_undefined`]; `every_task`: the run selects every task (no `--tags`,
/// `--skip-tags` or `--start-at-task`), so a task that certainly runs can be known.
pub fn check_play(play: &Play, catalog: &dyn Catalog, known: &HashSet<String>, templates: &Templates, project_root: &Path, playbook_dir: &Path, every_task: bool) -> SResult<HashSet<String>> {
    let mut known: HashSet<String> = known.clone();
    known.extend(MAGIC.iter().map(|s| s.to_string()));
    known.extend(play.vars.keys().cloned());
    known.extend(play.vars_prompt.iter().map(|p| p.name.clone()));
    known.extend(play.role_defaults.keys().cloned());
    known.extend(play.role_vars.keys().cloned());
    // vars_files found per host (templated names): any name may come from them.
    if !play.vars_files.is_empty() {
        known.insert(ANY.into());
    }
    let mut entries = Vec::new();
    let mut given = Vec::new();
    let mut sure = Vec::new();
    ordered(&play.tasks, &mut entries, &mut given, &[], true, &mut sure);
    let later: std::collections::HashMap<String, &Task> = entries.iter().rev().flatten().flat_map(|t| defines(t, catalog).into_iter().map(move |n| (n, *t))).collect();
    let mut so_far = known.clone();
    let mut defined = HashSet::new();
    let mut ended = !every_task;
    for (i, entry) in entries.iter().enumerate() {
        // After an include resolved at run time or `include_vars`, any name may be defined:
        // only syntax and plugin names are checked from there on.
        let Some(task) = entry else {
            so_far.insert(ANY.into());
            defined.insert(ANY.to_string());
            continue;
        };
        let mut k = so_far.clone();
        k.extend(task.register.iter().cloned());
        if let Some((_, names)) = given.iter().find(|(at, _)| *at == i) {
            k.extend(names.iter().cloned());
        }
        let certain = !ended && sure[i] && certainly_runs(task);
        check_task(task, &k, templates, project_root, playbook_dir, certain).map_err(|e| used_before(e, &k, &later, task))?;
        // After a `meta: end_*` the tasks may not run at all.
        if task.module == "meta" {
            ended = true;
        }
        so_far.extend(defines(task, catalog));
        defined.extend(defines(task, catalog));
        if task.module == "include_vars" {
            so_far.insert(ANY.into());
            defined.insert(ANY.to_string());
        }
    }
    for task in &play.handlers {
        let mut k = so_far.clone();
        k.extend(task.register.iter().cloned());
        // A file a handler includes is checked for syntax and plugins (its variables may come
        // with the include, or it may never run).
        if task.handler_of.is_some() {
            k.insert(ANY.into());
        }
        check_task(task, &k, templates, project_root, playbook_dir, false)?;
        // What a handler registers, the handlers after it see.
        so_far.extend(defines(task, catalog));
        defined.extend(defines(task, catalog));
    }
    Ok(defined)
}

/// What a task defines for the tasks after it (its own register also for its own conditions).
fn defines(t: &Task, catalog: &dyn Catalog) -> Vec<String> {
    let mut out: Vec<String> = t.register.iter().cloned().collect();
    if t.module == "set_fact" {
        if let Json::Object(m) = &t.args {
            // A templated key (`"{{ item.key }}": x`) may be any name.
            out.extend(m.keys().map(|k| if is_template(k) { ANY.to_string() } else { k.clone() }));
        }
    }
    // A module recover does not build may return any facts.
    if !catalog.knows(&t.module) {
        out.push(ANY.into());
    }
    if t.module == "service_facts" {
        out.push("services".into());
    }
    if t.module == "package_facts" {
        out.push("packages".into());
    }
    // getent's fact is named by its database.
    if t.module == "getent" {
        if let Some(db) = t.args.get("database").and_then(Json::as_str) {
            out.push(if crate::template::is_template(db) { ANY.to_string() } else { format!("getent_{db}") });
        }
    }
    out
}

/// In a set of known names: every name may be defined (see [`check_undefined`]).
const ANY: &str = "*";

/// Whether a task, once reached, certainly evaluates its arguments and stops the host if
/// that fails: no `when`, no loop (an empty one evaluates nothing), no `ignore_errors`, no tag
/// that keeps it out, not a `meta` task.
fn certainly_runs(task: &Task) -> bool {
    task.when.is_empty() && task.loop_items.is_none() && task.ignore_errors.is_none() && !task.tags.iter().any(|t| t == "never") && task.module != "meta"
}

/// The tasks of `items` in the order they run; `None` for an include whose file is known
/// only at run time. `sure[i]`: entry i is reached whenever its play runs (not in a rescue,
/// nor a block with one, nor a conditional or looping include).
fn ordered<'a>(items: &'a [super::Item], out: &mut Vec<Option<&'a Task>>, given: &mut Vec<(usize, Vec<String>)>, outer: &[String], reached: bool, sure: &mut Vec<bool>) {
    for i in items {
        match i {
            super::Item::Task(t) => {
                if !outer.is_empty() {
                    given.push((out.len(), outer.to_vec()));
                }
                out.push(Some(t));
                sure.push(reached);
            }
            super::Item::Block(b) => {
                let rescued = !b.rescue.is_empty();
                ordered(&b.block, out, given, outer, reached && !rescued, sure);
                ordered(&b.rescue, out, given, outer, false, sure);
                ordered(&b.always, out, given, outer, reached && !rescued, sure);
            }
            super::Item::Include(inc) => match &inc.preloaded {
                // An include's vars and loop variable are its tasks' own.
                Some(p) => {
                    let mut names = outer.to_vec();
                    names.extend(inc.vars.keys().cloned());
                    if inc.loop_items.is_some() {
                        names.push(inc.loop_var.clone());
                    }
                    ordered(p, out, given, &names, reached && inc.when.is_empty() && inc.loop_items.is_none(), sure);
                    // A public role's variables are the host's after it: any name may be.
                    if inc.public {
                        out.push(None);
                        sure.push(false);
                    }
                }
                None => {
                    out.push(None);
                    sure.push(false);
                }
            },
        }
    }
}

/// "undefined variable 'x'" where x is registered by a later task: say so.
fn used_before(e: SourceError, known: &HashSet<String>, later: &std::collections::HashMap<String, &Task>, task: &Task) -> SourceError {
    for (name, by) in later {
        if !known.contains(name) && e.message.contains(&format!("'{name}'")) && !std::ptr::eq(*by, task) {
            return SourceError::new(e.span.clone(), format!("'{name}' is used before the task that registers it ('{}' at {})", by.display_name(), by.span))
                .help("move the task that sets it earlier, or guard the use with `is defined`");
        }
    }
    e
}

/// Checks one task; `certain`: it certainly runs and evaluates its arguments (see the module
/// doc), so a mistake in them is an error; every other mistake is a warning.
fn check_task(task: &Task, known: &HashSet<String>, t: &Templates, root: &Path, pdir: &Path, certain: bool) -> SResult<()> {
    match check_task_inner(task, known, t, root, pdir, certain) {
        Err(e) if !certain => {
            soft(Err(e));
            Ok(())
        }
        r => r,
    }
}

/// A mistake where the task may not run or may not evaluate it: a warning with file:line:col.
fn soft(r: SResult<()>) {
    if let Err(e) = r {
        warn_once(&format!("{}: {}{}; the task fails where it evaluates it", e.span, e.message, e.help.as_ref().map(|h| format!(" ({h})")).unwrap_or_default()));
    }
}

fn check_task_inner(task: &Task, known: &HashSet<String>, t: &Templates, root: &Path, pdir: &Path, certain: bool) -> SResult<()> {
    let mut known = known.clone();
    known.extend(task.vars.keys().cloned());
    known.extend(task.scope_vars.keys().cloned());
    if let Some(d) = &task.defaults {
        known.extend(d.keys().cloned());
    }
    if let Some(i) = &task.loop_control.index_var {
        known.insert(i.clone());
    }
    // `when: x is defined` guards the whole task: x may be used in it.
    static DEFINED: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let defined = DEFINED.get_or_init(|| regex::Regex::new(r"\b([A-Za-z_][A-Za-z0-9_]*)\s+is\s+defined\b").expect("static regex"));
    for c in &task.when {
        known.extend(defined.captures_iter(&c.expr).map(|m| m[1].to_string()));
    }
    if task.loop_items.is_some() {
        known.insert(task.loop_var.clone());
    }
    // The loop and the conditions may not be evaluated (a `when` before them false, a module
    // that fails first): warnings.
    if let Some((items, span)) = &task.loop_items {
        soft(check_json(items, span, &known, t, false));
    }
    for c in task.when.iter().chain(&task.changed_when).chain(&task.failed_when) {
        soft(check_expr(&c.expr, &c.span, &known, t, false));
    }
    if let Json::Object(args) = &task.args {
        for (k, v) in args {
            // assert's `that` is expressions, not template text (checked as such below).
            if task.module == "assert" && k == "that" {
                continue;
            }
            check_json(v, &task.arg_span(k), &known, t, certain)?;
        }
        if task.module == "assert" {
            let span = task.arg_span("that");
            match args.get("that") {
                Some(Json::String(e)) => check_expr(e, &span, &known, t, certain)?,
                Some(Json::Array(items)) => {
                    for e in items.iter().filter_map(Json::as_str) {
                        check_expr(e, &span, &known, t, certain)?;
                    }
                }
                _ => {}
            }
        }
        if task.module == "template" || task.module == "copy" {
            let remote = matches!(args.get("remote_src"), Some(Json::Bool(true))) || args.get("remote_src").and_then(Json::as_str).is_some_and(|s| matches!(s, "yes" | "true" | "True"));
            if let (Some(Json::String(src)), false) = (args.get("src"), remote) {
                if !is_template(src) {
                    match super::find_src(src, task, pdir, root) {
                        Some(path) if task.module == "template" => {
                            if let Ok(text) = std::fs::read_to_string(&path) {
                                check_file(&text, &path, &known, t, certain)?;
                            }
                        }
                        Some(_) => {}
                        None if task.module == "copy" && copy_dir_exists(src, task, pdir, root) => {}
                        None => {
                            return Err(SourceError::new(task.arg_span("src"), format!("{}: src '{src}' not found", task.module))
                                .help(format!("looked in the role's templates/ and files/, {}/templates, {}/files, the playbook's folder and the project", pdir.display(), pdir.display())));
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

fn check_json(v: &Json, span: &Span, known: &HashSet<String>, t: &Templates, certain: bool) -> SResult<()> {
    match v {
        Json::String(s) if is_template(s) => check_text(s, span, known, t, certain),
        Json::Array(items) => items.iter().try_for_each(|i| check_json(i, span, known, t, certain)),
        Json::Object(_) if crate::template::as_unsafe(v).is_some() || crate::template::as_vault(v).is_some() => Ok(()),
        Json::Object(m) => m.values().try_for_each(|i| check_json(i, span, known, t, certain)),
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

fn check_text(text: &str, span: &Span, known: &HashSet<String>, t: &Templates, certain: bool) -> SResult<()> {
    let names = t.undeclared(text).map_err(|e| crate::template::located(&e, span))?;
    unknown_plugins(text, span, t, certain)?;
    report(names, text, span, known)
}

/// A filter, test or lookup recover does not have is named in a warning when the playbook
/// loads, before any host is contacted; the template that uses it fails, by that name, when it
/// is evaluated. As in ansible-core, a role's branch that uses a collection's filter but is
/// skipped by its `when` runs.
fn unknown_plugins(text: &str, span: &Span, t: &Templates, certain: bool) -> SResult<()> {
    // One the installed ansible-core has (a collection's, a plugin folder's) runs there.
    if let Some((kind, name)) = t.unknown_names(text).into_iter().find(|(kind, name)| !crate::pyansible::has_plugin(kind, name)) {
        let bare = name.strip_prefix("ansible.builtin.").unwrap_or(&name);
        let refused = crate::template::lookups::REFUSED_LOOKUPS.iter().find(|(n, _)| kind == "lookup" && *n == bare);
        let help = if let Some((_, why)) = refused {
            format!("ansible-core's '{bare}' lookup is not implemented by recover: {why}")
        } else if name.contains('.') && !name.starts_with("ansible.builtin.") {
            format!("'{name}' comes from a collection that no installed ansible-core has (recover runs a collection's plugins through the controller's ansible-core)")
        } else if kind == "lookup" {
            format!("lookups recover has: {}", crate::template::filters::LOOKUPS.join(", "))
        } else {
            "recover implements Ansible's builtin filters and tests; this one is not among them".to_string()
        };
        // Only provably missing is an error: a collection's name, or a plugin folder beside the
        // task's role or playbook (ansible-core loads plugins from there), may supply it.
        if certain && provably_missing(&name, span) {
            return Err(SourceError::new(span.clone(), format!("unknown {kind} '{name}' in `{}`: this task certainly runs and would fail here, so nothing is run", text.trim())).help(help));
        }
        warn_once(&format!("{span}: unknown {kind} '{name}' in `{}` ({help}); a task that evaluates it fails", text.trim()));
    }
    Ok(())
}

/// A filter, test or lookup that nothing can supply: a builtin name (not a collection's), and no
/// `filter_plugins/`, `test_plugins/` or `lookup_plugins/` folder beside the task's file or
/// any folder above it (a role's, the playbook's).
fn provably_missing(name: &str, span: &Span) -> bool {
    if name.contains('.') && !name.starts_with("ansible.builtin.") && !name.starts_with("ansible.legacy.") {
        return false;
    }
    let Some(file) = span.file.as_deref() else { return true };
    !file.ancestors().skip(1).take(6).any(|d| ["filter_plugins", "test_plugins", "lookup_plugins"].iter().any(|p| d.join(p).is_dir()))
}

/// Prints a load-time warning once per run.
fn warn_once(msg: &str) {
    static SEEN: std::sync::OnceLock<std::sync::Mutex<HashSet<String>>> = std::sync::OnceLock::new();
    let seen = SEEN.get_or_init(Default::default);
    if seen.lock().map(|mut s| s.insert(msg.to_string())).unwrap_or(false) {
        eprintln!("[WARNING]: {msg}");
    }
}

fn check_expr(expr: &str, span: &Span, known: &HashSet<String>, t: &Templates, certain: bool) -> SResult<()> {
    let inner = expr.trim();
    let inner = inner.strip_prefix("{{").and_then(|e| e.strip_suffix("}}")).unwrap_or(inner);
    check_text(&format!("{{{{ {inner} }}}}"), span, known, t, certain)
}

fn check_file(text: &str, path: &Path, known: &HashSet<String>, t: &Templates, certain: bool) -> SResult<()> {
    // A `#jinja2:` header line is not template text; with other delimiters, the file is checked when rendered.
    let text = match text.strip_prefix("#jinja2:") {
        Some(rest) if rest.lines().next().is_some_and(|l| l.contains("_string") || l.contains("_prefix")) => return Ok(()),
        Some(rest) => rest.split_once('\n').map(|(_, body)| body).unwrap_or(""),
        None => text,
    };
    let file_span = Span::file(path);
    let names = t.undeclared(text).map_err(|e| {
        let mut s = crate::template::located(&e, &Span { line: 1, col: 1, ..file_span.clone() });
        if e.line().is_none() {
            s.span = file_span.clone();
        }
        s
    })?;
    // One the installed ansible-core has (a collection's, a plugin folder's) runs there.
    if let Some((kind, name)) = t.unknown_names(text).into_iter().find(|(kind, name)| !crate::pyansible::has_plugin(kind, name)) {
        let hit = text.lines().enumerate().find(|(_, l)| l.contains(&name));
        let span = hit.map(|(i, l)| Span { line: i + 1, col: l.find(&name).unwrap_or(0) + 1, ..file_span.clone() }).unwrap_or(file_span.clone());
        if certain && provably_missing(&name, &file_span) {
            return Err(SourceError::new(span, format!("unknown {kind} '{name}' in template: the task that renders it certainly runs and would fail, so nothing is run")).help("recover implements Ansible's builtin filters, tests and lookups; this one is not among them"));
        }
        warn_once(&format!("{span}: unknown {kind} '{name}' in template (recover implements Ansible's builtin filters, tests and lookups; this one is not among them); rendering it fails"));
    }
    for name in names {
        // What ansible-core defines for every template it renders (the template module's and
        // the template lookup's).
        const TEMPLATE_VARS: &[&str] = &["template_host", "template_path", "template_fullpath", "template_destpath", "template_uid", "template_mtime", "template_run_date"];
        if known.contains(&name) || known.contains(ANY) || name.starts_with("ansible_") || TEMPLATE_VARS.contains(&name.as_str()) {
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
    if known.contains(ANY) {
        return Ok(());
    }
    let mut missing: Vec<String> = names.into_iter().filter(|n| !known.contains(n) && !n.starts_with("ansible_")).collect();
    missing.sort();
    match missing.first() {
        None => Ok(()),
        Some(name) => Err(SourceError::new(span.clone(), format!("undefined variable '{name}' in `{}`", text.trim())).help(define_help(name))),
    }
}

fn define_help(name: &str) -> String {
    format!("define '{name}' in the inventory, the play's vars or a role's defaults, or pass -e {name}=VALUE")
}

/// `copy: src=DIR` copies a folder: it exists where a file would be looked for.
fn copy_dir_exists(src: &str, task: &Task, pdir: &Path, root: &Path) -> bool {
    let p = Path::new(src);
    if p.is_absolute() {
        return p.exists();
    }
    let mut dirs = Vec::new();
    if let Some(r) = &task.role_dir {
        dirs.extend([r.join("files"), r.clone()]);
    }
    dirs.extend([pdir.join("files"), pdir.to_path_buf(), root.join("files"), root.to_path_buf()]);
    dirs.iter().any(|d| d.join(src).exists())
}
