//! Loading a playbook file: its plays (and `import_playbook`), each play's keywords checked,
//! its roles, tasks and handlers loaded, every handler a task notifies found.

use std::path::Path;


use super::{Item, Flag, Inherited, Play, Playbook, Serial, Task};
use super::block::{item_list, load_ctx};
use super::keywords::{become_kw, dir_of, flag, inherited, refuse_unsupported_values, LoadCtx};
use super::fields::{conds, mapping, opt_bool, opt_string, opt_u64, strings, unknown_key};
use super::role::{flat_handlers, load_role, role_entry};
use super::kv::is_identifier;
use crate::error::{SResult, SourceError};
use crate::template::Vars;
use crate::yaml::{self, Node, Value};

pub(super) const PLAY_KEYS: &[&str] = &[
    "name", "description", "hosts", "vars", "roles", "tasks", "pre_tasks", "post_tasks", "handlers", "serial",
    "max_fail_percentage", "become", "become_user", "become_method", "gather_facts", "gather_subset", "timeout", "tags",
    "vars_files", "remote_user", "environment", "any_errors_fatal", "ignore_errors", "no_log", "check_mode", "diff",
    "ignore_unreachable", "strategy", "order", "force_handlers", "collections", "run_once", "port", "connection", "module_defaults",
    "become_flags", "become_exe", "throttle", "vars_prompt", "gather_timeout", "fact_path",
];

/// Play keys Ansible has that recover refuses by name.
pub(super) const PLAY_REFUSED: &[&str] = &["debugger"];

/// Loads a playbook file: a play or a list of plays (`import_playbook` entries brought in).
///
/// `catalog` is the modules its tasks may name (`&crate::modules::BUILTINS`).
pub fn load(path: &Path, project_root: &Path, catalog: &'static dyn super::Catalog) -> SResult<Playbook> {
    let mut plays = Vec::new();
    load_plays(path, project_root, catalog, &mut plays, 0)?;
    Ok(Playbook { path: path.to_path_buf(), plays, catalog })
}

pub(super) fn load_plays(path: &Path, project_root: &Path, catalog: &'static dyn super::Catalog, plays: &mut Vec<Play>, depth: usize) -> SResult<()> {
    let root = yaml::load_file(path)?;
    let play_nodes: Vec<&Node> = match &root.value {
        Value::Seq(items) => items.iter().collect(),
        Value::Map(_) => vec![&root],
        Value::Null => return Err(root.error("the playbook is empty")),
        _ => return Err(root.error(format!("a playbook is a play or a list of plays, found {}", root.kind()))),
    };
    let dir = dir_of(path);
    for node in play_nodes {
        let import = ["import_playbook", "ansible.builtin.import_playbook", "ansible.legacy.import_playbook"].iter().find_map(|k| node.get(k));
        if let Some(file) = import {
            if depth > 20 {
                return Err(file.error("import_playbook nested more than 20 levels (a loop?)"));
            }
            for (k, _) in node.as_map().unwrap_or_default() {
                let key = k.scalar_string().unwrap_or_default();
                if !key.ends_with("import_playbook") && !["name", "vars", "when", "tags"].contains(&key.as_str()) {
                    return Err(k.error(format!("`{key}` on import_playbook is not supported by recover")).help("import_playbook takes name, vars, when and tags; put others on the imported plays"));
                }
            }
            let rel = file.as_str().ok_or_else(|| file.error("import_playbook takes a file name"))?;
            if crate::template::is_template(rel) {
                return Err(file.error("import_playbook is static: its file name cannot be a template"));
            }
            let p = dir.join(rel);
            if !p.is_file() {
                return Err(file.error(format!("import_playbook: no such file {}", p.display())));
            }
            // As ansible-core: the import's vars over each play's own, its `when` on every task
            // of the imported plays, its tags added to theirs.
            let mut imported = Vec::new();
            load_plays(&p, project_root, catalog, &mut imported, depth + 1)?;
            let vars = mapping(node.get("vars"), "vars")?;
            let outer = Inherited { when: conds(node.get("when"))?, tags: strings(node.get("tags"))?, ..Default::default() };
            for mut play in imported {
                play.vars.extend(vars.iter().map(|(k, v)| (k.clone(), v.clone())));
                outer.push_into(&mut play.tasks);
                for h in &mut play.handlers {
                    h.when.splice(0..0, outer.when.iter().cloned());
                }
                plays.push(play);
            }
            continue;
        }
        plays.push(load_play(node, path, project_root, catalog)?);
    }
    Ok(())
}

pub(super) fn load_play(node: &Node, path: &Path, project_root: &Path, catalog: &'static dyn super::Catalog) -> SResult<Play> {
    check_play_keys(node)?;
    refuse_unsupported_values(node)?;
    let hosts = play_hosts(node)?;
    let name = opt_string(node, "name")?.unwrap_or_else(|| hosts.clone());
    let dir = dir_of(path);
    let vars_prompt = prompts(node.get("vars_prompt"))?;
    let port = match node.get("port") {
        None => None,
        Some(p) => Some(p.scalar_string().and_then(|s| s.trim().parse::<u16>().ok()).ok_or_else(|| p.error("`port` must be a port number (1-65535)"))?),
    };
    let mut play = Play {
        vars_prompt,
        port,
        name,
        description: opt_string(node, "description")?,
        hosts,
        span: node.span.clone(),
        vars: mapping(node.get("vars"), "vars")?,
        role_defaults: Vars::new(),
        role_vars: Vars::new(),
        tasks: Vec::new(),
        handlers: Vec::new(),
        serial: None,
        max_fail_percentage: None,
        r#become: match flag(node, "become")? {
            Some(Flag::Fixed(b)) => Some(b),
            _ => None,
        },
        become_user: opt_string(node, "become_user")?,
        become_kw: become_kw(node)?,
        timeout: opt_u64(node, "timeout")?,
        gather_facts: match node.get("gather_facts") {
            None => None,
            Some(_) => opt_bool(node, "gather_facts")?,
        },
        gather_subset: strings(node.get("gather_subset"))?,
        gather_timeout: opt_u64(node, "gather_timeout")?,
        fact_path: opt_string(node, "fact_path")?,
        remote_user: opt_string(node, "remote_user")?,
        connection: opt_string(node, "connection")?,
        force_handlers: opt_bool(node, "force_handlers")?.unwrap_or(false),
        any_errors_fatal: opt_bool(node, "any_errors_fatal")?.unwrap_or(false),
        vars_files: Vec::new(),
        role_names: Vec::new(),
        dependent_role_names: Vec::new(),
        order: opt_string(node, "order")?,
        strategy: opt_string(node, "strategy")?,
    };
    vars_files(node, dir, &mut play)?;
    batches(node, &mut play)?;
    let play_inherit = play_inherited(node)?;
    crate::pyansible::note_dir(dir);
    let mut ctx = load_ctx(None, dir.to_path_buf(), project_root.to_path_buf(), catalog);
    ctx.collections = strings(node.get("collections"))?;
    let (mut tasks, mut handlers) = play_tasks(node, dir, &ctx, &mut play)?;
    play_inherit.push_into(&mut tasks);
    let mut tagless = play_inherit.clone();
    tagless.tags.clear();
    for h in &mut handlers {
        tagless.apply(h);
    }
    play.tasks = tasks;
    play.handlers = handlers;
    check_notified(&play)?;
    Ok(play)
}

/// Every key of a play is one ansible-core knows (and recover runs).
fn check_play_keys(node: &Node) -> SResult<()> {
    let entries = node.as_map().ok_or_else(|| node.error(format!("a play must be a mapping, found {}", node.kind())))?;
    for (k, _) in entries {
        let key = k.scalar_string().unwrap_or_default();
        if PLAY_REFUSED.contains(&key.as_str()) {
            return Err(k.error(format!("play keyword `{key}` is not supported by recover")));
        }
        if !PLAY_KEYS.contains(&key.as_str()) {
            return Err(unknown_key(k, &key, PLAY_KEYS, "play"));
        }
    }
    Ok(())
}

/// `hosts:` as a pattern (a list is its terms joined with `:`).
fn play_hosts(node: &Node) -> SResult<String> {
    let hosts_node = node.get("hosts").ok_or_else(|| node.error("a play needs `hosts:` (a host pattern such as `all`, `data` or `k3s:!121`)"))?;
    Ok(match &hosts_node.value {
        Value::Seq(items) => items
            .iter()
            .map(|i| match &i.value {
                Value::Str(_) | Value::Int(_) => Ok(i.scalar_string().unwrap_or_default()),
                _ => Err(i.error(format!("a host pattern must be text, found {}", i.kind()))),
            })
            .collect::<SResult<Vec<_>>>()?
            .join(":"),
        _ => hosts_node.scalar_string().ok_or_else(|| hosts_node.error("`hosts` must be a host pattern"))?,
    })
}

/// vars_files: above the play's vars in Ansible's precedence; an entry that is a list names
/// alternatives, the first that exists wins. Templated names are found per host at run time.
fn vars_files(node: &Node, dir: &Path, play: &mut Play) -> SResult<()> {
    if let Some(vf) = node.get("vars_files") {
        let entries: Vec<&Node> = match &vf.value {
            Value::Seq(items) => items.iter().collect(),
            Value::Null => Vec::new(),
            _ => vec![vf],
        };
        let mut all: Vec<(Vec<String>, &Node)> = Vec::new();
        for e in entries {
            let names: Vec<&Node> = match &e.value {
                Value::Seq(alts) => alts.iter().collect(),
                _ => vec![e],
            };
            let names = names.iter().map(|n| n.as_str().map(str::to_string).ok_or_else(|| n.error("a vars_files entry is a file name or a list of them"))).collect::<SResult<Vec<_>>>()?;
            all.push((names, e));
        }
        if all.iter().any(|(names, _)| names.iter().any(|n| crate::template::is_template(n))) {
            // A name is a template: every entry is found per host once its facts are known, in
            // the order written (a later file wins), as ansible-core does.
            play.vars_files = all.into_iter().map(|(names, e)| crate::playbook::VarsFile { names, dir: dir.to_path_buf(), span: e.span.clone() }).collect();
        } else {
            for (names, e) in all {
                let p = names.iter().map(|n| dir.join(n)).find(|p| p.is_file());
                let p = p.ok_or_else(|| e.error(format!("vars_files: no such file {}", names.iter().map(|n| dir.join(n).display().to_string()).collect::<Vec<_>>().join(" or "))))?;
                let loaded = yaml::load_file(&p)?;
                play.vars.extend(mapping(Some(&loaded), "vars_files")?);
            }
        }
    }
    Ok(())
}

/// `serial:` and `max_fail_percentage:`.
fn batches(node: &Node, play: &mut Play) -> SResult<()> {
    if let Some(s) = node.get("serial") {
        let one = |s: &Node| -> SResult<Serial> {
            match &s.value {
                Value::Int(n) if *n > 0 => Ok(Serial::Count(*n as usize)),
                Value::Str(t) if t.trim().parse::<usize>().is_ok_and(|n| n > 0) => Ok(Serial::Count(t.trim().parse().unwrap_or(1))),
                Value::Str(t) if t.ends_with('%') => Ok(Serial::Percent(t.trim_end_matches('%').trim().parse().map_err(|_| s.error("`serial` must be a number or a percentage like 30%"))?)),
                _ => Err(s.error("`serial` must be a positive number, a percentage like 30%, or a list of them")),
            }
        };
        play.serial = Some(match &s.value {
            Value::Seq(items) if !items.is_empty() => Serial::List(items.iter().map(one).collect::<SResult<Vec<_>>>()?),
            _ => one(s)?,
        });
    }
    if let Some(m) = node.get("max_fail_percentage") {
        play.max_fail_percentage = Some(match &m.value {
            Value::Int(n) => *n as f64,
            Value::Float(f) => *f,
            _ => return Err(m.error("`max_fail_percentage` must be a number")),
        });
    }
    Ok(())
}

/// The play's keywords that reach every task (its tags too, but not its handlers').
fn play_inherited(node: &Node) -> SResult<Inherited> {
    let mut play_inherit = inherited(node)?;
    play_inherit.when.clear();
    play_inherit.vars.clear();
    // A templated `become` of the play reaches its tasks, evaluated per host with theirs.
    if !matches!(play_inherit.r#become, Some(Flag::Expr(_))) {
        play_inherit.r#become = None;
    }
    play_inherit.become_user = None;
    play_inherit.timeout = None;
    play_inherit.remote_user = None;
    play_inherit.delegate_to = None;
    Ok(play_inherit)
}

/// The play's tasks in the order they run (pre_tasks, roles, tasks, post_tasks) and its
/// handlers (roles', import_role's, its own).
fn play_tasks(node: &Node, dir: &Path, ctx: &LoadCtx, play: &mut Play) -> SResult<(Vec<Item>, Vec<Task>)> {
    let mut tasks = item_list(node.get("pre_tasks"), dir, ctx, 0)?;
    let mut handlers = Vec::new();
    if let Some(roles) = node.get("roles") {
        let items = match &roles.value {
            Value::Seq(items) => items.as_slice(),
            Value::Null => &[],
            _ => return Err(roles.error("`roles` must be a list of role names")),
        };
        for r in items {
            let entry = role_entry(r)?;
            play.role_names.push(entry.name.clone());
            let loaded = load_role(&entry, r, ctx, true, 0)?;
            play.role_defaults.extend(loaded.defaults);
            play.role_vars.extend(loaded.exported_vars);
            tasks.extend(loaded.tasks);
            handlers.extend(loaded.handlers);
        }
        play.dependent_role_names = ctx.dependents.borrow().clone();
    }
    tasks.extend(item_list(node.get("tasks"), dir, ctx, 0)?);
    tasks.extend(item_list(node.get("post_tasks"), dir, ctx, 0)?);
    // Handlers of roles import_role brought, after those of `roles:` and before the play's own.
    let imported = |handlers: &mut Vec<Task>| {
        for h in ctx.imported_handlers.borrow_mut().drain(..) {
            if !handlers.iter().any(|k| k.span == h.span) {
                handlers.push(h);
            }
        }
    };
    imported(&mut handlers);
    handlers.extend(flat_handlers(item_list(node.get("handlers"), dir, ctx, 0)?, node, ctx)?);
    imported(&mut handlers);
    {
        let (d, v) = std::mem::take(&mut *ctx.imported_vars.borrow_mut());
        play.role_defaults.extend(d);
        play.role_vars.extend(v);
    }
    Ok((tasks, handlers))
}

/// Every handler a task notifies (by a literal name) exists in the play.
fn check_notified(play: &Play) -> SResult<()> {
    // Handlers an include_role brings along count too (they join the play when it runs).
    let mut included: Vec<Task> = Vec::new();
    let mut tasks_copy = play.tasks.clone();
    super::walk_mut(&mut tasks_copy, &mut |_| {}, &mut |inc| included.extend(inc.handlers.iter().cloned()));
    for t in play.all_tasks() {
        for n in &t.notify {
            if !crate::template::is_template(n) && !play.handlers.iter().chain(included.iter()).any(|h| h.answers(n)) {
                return Err(SourceError::new(t.span.clone(), format!("task notifies '{n}', but the play has no handler of that name")));
            }
        }
    }
    Ok(())
}

/// `vars_prompt:` entries, checked at load.
pub(super) fn prompts(node: Option<&Node>) -> SResult<Vec<super::Prompt>> {
    let Some(node) = node else { return Ok(Vec::new()) };
    let Value::Seq(items) = &node.value else { return Err(node.error("`vars_prompt` takes a list of prompts (`- name: x`, `prompt: ...`)")) };
    let mut out = Vec::new();
    for item in items {
        let Value::Map(entries) = &item.value else { return Err(item.error("a `vars_prompt` entry is a mapping with `name:`")) };
        for (k, _) in entries {
            let key = k.scalar_string().unwrap_or_default();
            if !["name", "prompt", "default", "private", "confirm", "encrypt", "salt", "salt_size", "unsafe"].contains(&key.as_str()) {
                return Err(k.error(format!("`{key}` is not a vars_prompt key (name, prompt, default, private, confirm, encrypt, salt, salt_size, unsafe)")));
            }
        }
        let name = opt_string(item, "name")?.ok_or_else(|| item.error("a `vars_prompt` entry needs `name:`"))?;
        if !is_identifier(&name) {
            return Err(item.get("name").unwrap_or(item).error(format!("'{name}' is not a valid variable name")));
        }
        out.push(super::Prompt {
            name,
            prompt: opt_string(item, "prompt")?,
            default: item.get("default").map(Node::to_json),
            private: opt_bool(item, "private")?.unwrap_or(true),
            confirm: opt_bool(item, "confirm")?.unwrap_or(false),
            encrypt: opt_string(item, "encrypt")?,
            salt: opt_string(item, "salt")?,
            salt_size: opt_u64(item, "salt_size")?,
            span: item.span.clone(),
        });
    }
    Ok(out)
}


