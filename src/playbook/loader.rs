//! From YAML to [`Playbook`]: every key checked, every module's arguments
//! validated by the module itself, all before any host is contacted.

use std::path::{Path, PathBuf};

use serde_json::Value as Json;

use serde_json::json;

use super::{walk_mut, Block, Cond, Flag, Include, IncludeKind, Inherited, Item, Play, Playbook, Serial, Task};
use crate::error::{SResult, SourceError, Span};
use crate::template::Vars;
use crate::yaml::{self, Node, Value};

const PLAY_KEYS: &[&str] = &[
    "name", "description", "hosts", "vars", "roles", "tasks", "pre_tasks", "post_tasks", "handlers", "serial",
    "max_fail_percentage", "become", "become_user", "become_method", "gather_facts", "gather_subset", "timeout", "tags",
    "vars_files", "remote_user", "environment", "any_errors_fatal", "ignore_errors", "no_log", "check_mode", "diff",
    "ignore_unreachable", "strategy", "order", "force_handlers", "collections", "run_once", "port", "connection", "module_defaults",
    "become_flags", "become_exe", "throttle", "vars_prompt", "gather_timeout", "fact_path",
];
/// Play keys Ansible has that recover refuses by name.
const PLAY_REFUSED: &[&str] = &["debugger"];
const TASK_KEYS: &[&str] = &[
    "name", "when", "register", "become", "become_user", "become_method", "become_flags", "become_exe", "loop", "with_items",
    "loop_control", "changed_when", "failed_when", "ignore_errors", "notify", "listen", "tags", "read_only", "timeout",
    "vars", "no_log", "args", "check_mode", "destructive", "backup", "until", "retries", "delay", "environment", "module_defaults",
    "remote_user", "delegate_to", "delegate_facts", "run_once", "ignore_unreachable", "any_errors_fatal", "diff", "action",
    "local_action", "throttle", "collections", "port", "connection", "async", "poll",
];
/// Task keys Ansible has that recover refuses by name.
const TASK_REFUSED: &[&str] = &["debugger"];
/// The keywords a block takes besides `block`, `rescue` and `always`.
const BLOCK_KEYS: &[&str] = &[
    "name", "when", "tags", "vars", "become", "become_user", "become_method", "become_flags", "become_exe", "ignore_errors",
    "no_log", "environment", "remote_user", "delegate_to", "run_once", "check_mode", "timeout", "any_errors_fatal", "module_defaults",
    "ignore_unreachable", "diff", "collections", "throttle", "port", "connection",
];
/// `with_<lookup>` loops: the lookup's results are the items.
const WITH_LOOPS: &[&str] = &[
    "with_items", "with_list", "with_dict", "with_subelements", "with_nested", "with_cartesian", "with_together",
    "with_sequence", "with_fileglob", "with_first_found", "with_indexed_items", "with_random_choice", "with_lines",
    "with_file", "with_flattened", "with_inventory_hostnames", "with_env", "with_template",
];

/// Loads a playbook file: a play or a list of plays (`import_playbook` entries brought in).
pub fn load(path: &Path, project_root: &Path) -> SResult<Playbook> {
    let mut plays = Vec::new();
    load_plays(path, project_root, &mut plays, 0)?;
    Ok(Playbook { path: path.to_path_buf(), plays })
}

fn load_plays(path: &Path, project_root: &Path, plays: &mut Vec<Play>, depth: usize) -> SResult<()> {
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
            load_plays(&p, project_root, &mut imported, depth + 1)?;
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
        plays.push(load_play(node, path, project_root)?);
    }
    Ok(())
}

fn load_play(node: &Node, path: &Path, project_root: &Path) -> SResult<Play> {
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
    refuse_unsupported_values(node)?;
    let hosts_node = node.get("hosts").ok_or_else(|| node.error("a play needs `hosts:` (a host pattern such as `all`, `data` or `k3s:!121`)"))?;
    let hosts = match &hosts_node.value {
        Value::Seq(items) => items
            .iter()
            .map(|i| match &i.value {
                Value::Str(_) | Value::Int(_) => Ok(i.scalar_string().unwrap_or_default()),
                _ => Err(i.error(format!("a host pattern must be text, found {}", i.kind()))),
            })
            .collect::<SResult<Vec<_>>>()?
            .join(":"),
        _ => hosts_node.scalar_string().ok_or_else(|| hosts_node.error("`hosts` must be a host pattern"))?,
    };
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
        order: opt_string(node, "order")?,
        strategy: opt_string(node, "strategy")?,
    };
    // vars_files: above the play's vars in Ansible's precedence; an entry that is a list names
    // alternatives, the first that exists wins.
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
    // The play's keywords reach every task (its tags too, but not its handlers').
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
    let ctx = LoadCtx { role_dir: None, playbook_dir: dir.to_path_buf(), project_root: project_root.to_path_buf(), seen: Default::default(), imported_handlers: Default::default(), imported_vars: Default::default() };
    let mut tasks = item_list(node.get("pre_tasks"), dir, &ctx, 0)?;
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
            let loaded = load_role(&entry, r, &ctx, true, 0)?;
            play.role_defaults.extend(loaded.defaults);
            play.role_vars.extend(loaded.exported_vars);
            tasks.extend(loaded.tasks);
            handlers.extend(loaded.handlers);
        }
    }
    tasks.extend(item_list(node.get("tasks"), dir, &ctx, 0)?);
    tasks.extend(item_list(node.get("post_tasks"), dir, &ctx, 0)?);
    // Handlers of roles import_role brought, after those of `roles:` and before the play's own.
    let imported = |handlers: &mut Vec<Task>| {
        for h in ctx.imported_handlers.borrow_mut().drain(..) {
            if !handlers.iter().any(|k| k.span == h.span) {
                handlers.push(h);
            }
        }
    };
    imported(&mut handlers);
    handlers.extend(flat_handlers(item_list(node.get("handlers"), dir, &ctx, 0)?, node)?);
    imported(&mut handlers);
    {
        let (d, v) = std::mem::take(&mut *ctx.imported_vars.borrow_mut());
        play.role_defaults.extend(d);
        play.role_vars.extend(v);
    }
    play_inherit.push_into(&mut tasks);
    let mut tagless = play_inherit.clone();
    tagless.tags.clear();
    for h in &mut handlers {
        tagless.apply(h);
    }
    play.tasks = tasks;
    play.handlers = handlers;
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
    Ok(play)
}

/// `vars_prompt:` entries, checked at load.
fn prompts(node: Option<&Node>) -> SResult<Vec<super::Prompt>> {
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

/// Values of supported keywords recover does not implement (a `strategy` other than linear).
fn refuse_unsupported_values(node: &Node) -> SResult<()> {
    if let Some(s) = node.get("strategy") {
        if s.as_str() != Some("linear") {
            // `free` and `host_pinned` run each host through the play at its own pace;
            // `debug` is not implemented.
            if !matches!(s.as_str(), Some("free" | "host_pinned")) {
                return Err(s.error(format!("strategy {:?} is not supported by recover (linear, free or host_pinned)", s.scalar_string().unwrap_or_default())));
            }
        }
    }
    if let Some(o) = node.get("order") {
        if !matches!(o.as_str(), Some("inventory" | "reverse_inventory" | "sorted" | "reverse_sorted" | "shuffle")) {
            return Err(o.error("`order` must be one of: inventory, reverse_inventory, sorted, reverse_sorted, shuffle"));
        }
    }
    if let Some(c) = node.get("connection") {
        if !matches!(c.as_str(), Some("ssh" | "local" | "smart" | "paramiko")) {
            return Err(c.error(format!("connection {:?} is not supported by recover (ssh or local)", c.scalar_string().unwrap_or_default())));
        }
    }
    if let Some(m) = node.get("become_method") {
        let text = m.scalar_string().unwrap_or_default();
        if !crate::template::is_template(&text) {
            crate::transport::BecomeMethod::parse(&text).map_err(|e| m.error(e))?;
        }
    }
    if let Some(c) = node.get("collections") {
        let names = strings(Some(c))?;
        if let Some(n) = names.iter().find(|n| !matches!(n.as_str(), "ansible.builtin" | "ansible.legacy")) {
            return Err(c.error(format!("collection '{n}' is not supported by recover (its modules are not built in)")));
        }
    }
    // A play's `port` is its hosts' default port; recover keeps one connection per host, so a
    // block or a task cannot change it.
    if let (Some(v), None) = (node.get("port"), node.get("hosts")) {
        return Err(v.error("`port` on a block or task is not supported by recover: it keeps one connection per host (set it on the play, or as ansible_port)"));
    }
    for k in ["become_flags", "become_exe"] {
        if let Some(v) = node.get(k) {
            if v.scalar_string().is_none() {
                return Err(v.error(format!("`{k}` must be a string")));
            }
        }
    }
    Ok(())
}

/// `become_method`, `become_flags`, `become_exe` of a play, block or task.
fn become_kw(node: &Node) -> SResult<crate::playbook::BecomeKw> {
    Ok(crate::playbook::BecomeKw { method: opt_string(node, "become_method")?, flags: opt_string(node, "become_flags")?, exe: opt_string(node, "become_exe")? })
}

/// A `roles:` entry, `import_role` or `include_role`: what to load.
struct RoleEntry {
    name: String,
    vars: Vars,
    inherit: Inherited,
    tasks_from: Option<String>,
    vars_from: Option<String>,
    defaults_from: Option<String>,
    handlers_from: Option<String>,
}

fn role_entry(r: &Node) -> SResult<RoleEntry> {
    match &r.value {
        Value::Str(s) => Ok(RoleEntry { name: s.clone(), vars: Vars::new(), inherit: Inherited::default(), tasks_from: None, vars_from: None, defaults_from: None, handlers_from: None }),
        Value::Map(entries) => {
            let mut params = Vars::new();
            for (k, v) in entries {
                let key = k.scalar_string().unwrap_or_default();
                if BLOCK_KEYS.contains(&key.as_str()) || matches!(key.as_str(), "role" | "vars") {
                    continue;
                }
                if key == "name" {
                    continue;
                }
                // Anything else is a role parameter, as in Ansible's old-style role entries.
                if !is_identifier(&key) {
                    return Err(k.error(format!("`{key}` on a role entry is not a keyword or a valid variable name")));
                }
                params.insert(key, v.to_json());
            }
            refuse_unsupported_values(r)?;
            let name = r.get("role").or_else(|| r.get("name")).and_then(Node::scalar_string).ok_or_else(|| r.error("a role entry needs `role: NAME`"))?;
            let mut vars = mapping(r.get("vars"), "vars")?;
            vars.extend(params);
            let mut inherit = inherited(r)?;
            inherit.vars.clear();
            Ok(RoleEntry { name, vars, inherit, tasks_from: None, vars_from: None, defaults_from: None, handlers_from: None })
        }
        _ => Err(r.error("a role is a name or a mapping with `role:`")),
    }
}

/// A role's parts, its dependencies first.
struct LoadedRole {
    defaults: Vars,
    tasks: Vec<Item>,
    handlers: Vec<Task>,
    /// Its `vars/` (and its dependencies'), without its parameters: what it exposes.
    exported_vars: Vars,
}

fn load_role(entry: &RoleEntry, at: &Node, ctx: &LoadCtx, dedupe: bool, depth: usize) -> SResult<LoadedRole> {
    if depth > 20 {
        return Err(at.error("role dependencies nested more than 20 levels (a loop?)"));
    }
    let role_dir = find_role(&entry.name, &ctx.playbook_dir, &ctx.project_root).ok_or_else(|| {
        at.error(format!("role '{}' not found", entry.name)).help(format!(
            "looked in {}/roles, {}/roles and the search path (project, ~/.config/recover, /etc/recover, built-in)",
            ctx.playbook_dir.display(),
            ctx.project_root.display()
        ))
    })?;
    let mut out = LoadedRole { defaults: Vars::new(), tasks: Vec::new(), handlers: Vec::new(), exported_vars: Vars::new() };
    // A role runs once per play unless its parameters differ (or it allows duplicates).
    let key = (role_dir.display().to_string(), format!("{:?}{:?}", entry.vars, entry.tasks_from));
    let meta = match yaml_in(&role_dir.join("meta")) {
        Some(p) => Some(yaml::load_file(&p)?),
        None => None,
    };
    let allow_dup = meta.as_ref().and_then(|m| m.get("allow_duplicates")).is_some_and(|v| matches!(v.value, Value::Bool(true)));
    if dedupe && ctx.seen.borrow().contains(&key) && !allow_dup {
        return Ok(out);
    }
    ctx.seen.borrow_mut().push(key);
    if let Some(deps) = meta.as_ref().and_then(|m| m.get("dependencies")) {
        if let Value::Seq(items) = &deps.value {
            for d in items {
                let dep = role_entry(d)?;
                let mut loaded = load_role(&dep, d, ctx, true, depth + 1)?;
                out.defaults.extend(std::mem::take(&mut loaded.defaults));
                let mut inh = entry.inherit.clone();
                inh.tags.clear();
                inh.push_into(&mut loaded.tasks);
                out.tasks.extend(loaded.tasks);
                out.handlers.extend(loaded.handlers);
                out.exported_vars.extend(loaded.exported_vars);
            }
        }
    }
    if let Some(p) = role_file(&role_dir, "defaults", entry.defaults_from.as_deref(), at)? {
        out.defaults.extend(mapping(Some(&yaml::load_file(&p)?), "defaults")?);
    }
    let mut role_vars = entry.vars.clone();
    if let Some(p) = role_file(&role_dir, "vars", entry.vars_from.as_deref(), at)? {
        for (k, v) in mapping(Some(&yaml::load_file(&p)?), "vars")? {
            out.exported_vars.insert(k.clone(), v.clone());
            role_vars.entry(k).or_insert(v);
        }
    }
    let rctx = LoadCtx { role_dir: Some(role_dir.clone()), playbook_dir: ctx.playbook_dir.clone(), project_root: ctx.project_root.clone(), seen: ctx.seen.clone(), imported_handlers: ctx.imported_handlers.clone(), imported_vars: ctx.imported_vars.clone() };
    let mut inherit = entry.inherit.clone();
    inherit.vars = role_vars;
    let mut tasks = Vec::new();
    // ansible-core's first step of a role with an argument spec for its entry point.
    if let Some(t) = argument_spec_task(&role_dir, entry, meta.as_ref())? {
        tasks.push(Item::Task(Box::new(t)));
    }
    if let Some(p) = role_file(&role_dir, "tasks", entry.tasks_from.as_deref(), at)? {
        let tasks_node = yaml::load_file(&p)?;
        tasks.extend(item_list(Some(&tasks_node), p.parent().unwrap_or(&role_dir), &rctx, depth)?);
    }
    inherit.push_into(&mut tasks);
    out.tasks.extend(tasks);
    if let Some(p) = role_file(&role_dir, "handlers", entry.handlers_from.as_deref(), at)? {
        let node = yaml::load_file(&p)?;
        let mut hs = flat_handlers(item_list(Some(&node), &role_dir.join("handlers"), &rctx, depth)?, &node)?;
        let mut h_inherit = inherit.clone();
        h_inherit.tags.clear();
        h_inherit.when.clear();
        for h in &mut hs {
            h_inherit.apply(h);
        }
        out.handlers.extend(hs);
    }
    Ok(out)
}

/// The step ansible-core puts first in a role whose `meta/argument_specs.yml` (else
/// `meta/main.yml`'s `argument_specs`) has a spec for the entry point (`main`, or `tasks_from`):
/// `validate_argument_spec` of the role's parameters and variables, tagged `always`.
fn argument_spec_task(role_dir: &Path, entry: &RoleEntry, meta: Option<&Node>) -> SResult<Option<Task>> {
    let specs_file = ["argument_specs.yml", "argument_specs.yaml"].iter().map(|f| role_dir.join("meta").join(f)).find(|p| p.is_file());
    let loaded;
    let specs = match &specs_file {
        Some(p) => {
            loaded = yaml::load_file(p)?;
            loaded.get("argument_specs").map(Node::to_json)
        }
        None => meta.and_then(|m| m.get("argument_specs")).map(Node::to_json),
    };
    let entrypoint = entry.tasks_from.clone().unwrap_or_else(|| "main".into());
    let Some(spec) = specs.as_ref().and_then(|s| s.get(&entrypoint)).filter(|s| s.is_object()) else { return Ok(None) };
    let mut name = format!("Validating arguments against arg spec '{entrypoint}'");
    if let Some(d) = spec.get("short_description").and_then(Json::as_str) {
        name.push_str(&format!(" - {d}"));
    }
    // The spec is data: a `{{` in a description stays text when the step's arguments render.
    fn as_data(v: &Json) -> Json {
        match v {
            Json::String(s) if crate::template::is_template(s) => Json::String(format!("{{% raw %}}{s}{{% endraw %}}")),
            Json::Array(a) => Json::Array(a.iter().map(as_data).collect()),
            Json::Object(m) => Json::Object(m.iter().map(|(k, v)| (k.clone(), as_data(v))).collect()),
            other => other.clone(),
        }
    }
    let args = serde_json::json!({
        "argument_spec": as_data(spec.get("options").unwrap_or(&serde_json::json!({}))),
        "provided_arguments": Json::Object(entry.vars.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
        "validate_args_context": {"type": "role", "name": entry.name, "argument_spec_name": entrypoint, "path": role_dir.display().to_string()},
    });
    let at = specs_file.as_deref().map(Span::file).unwrap_or_else(|| Span::file(&role_dir.join("meta/main.yml")));
    let mut t = Task::synthetic(&name, "validate_argument_spec", args, at);
    t.role_dir = Some(role_dir.to_path_buf());
    t.tags = vec!["always".into()];
    Ok(Some(t))
}

/// `ROLE/<part>/main.yml`, or `<from>` (with or without `.yml`) for `tasks_from` and the like.
fn role_file(role_dir: &Path, part: &str, from: Option<&str>, at: &Node) -> SResult<Option<PathBuf>> {
    let d = role_dir.join(part);
    match from {
        None => Ok(yaml_in(&d)),
        Some(f) => {
            let c = [d.join(f), d.join(format!("{f}.yml")), d.join(format!("{f}.yaml"))];
            match c.iter().find(|p| p.is_file()) {
                Some(p) => Ok(Some(p.clone())),
                None => Err(at.error(format!("{part}_from: no such file {}", d.join(f).display()))),
            }
        }
    }
}

/// Handlers are a flat list of tasks: blocks are opened (their keywords are on each task).
fn flat_handlers(items: Vec<Item>, at: &Node) -> SResult<Vec<Task>> {
    let mut out = Vec::new();
    for i in items {
        match i {
            Item::Task(t) => out.push(*t),
            Item::Block(b) => {
                if !b.rescue.is_empty() || !b.always.is_empty() {
                    return Err(SourceError::new(b.span.clone(), "`rescue`/`always` in handlers are not supported by recover"));
                }
                out.extend(flat_handlers(b.block, at)?);
            }
            // A handler that is an include_tasks: notified by its name (or listen), it runs the
            // file's tasks with the include's vars and when.
            Item::Include(inc) => match (&inc.kind, inc.preloaded.clone()) {
                (IncludeKind::Tasks { file }, Some(p)) if inc.loop_items.is_none() => {
                    let mut names: Vec<String> = inc.name.iter().cloned().collect();
                    names.extend(inc.listen.iter().cloned());
                    if names.is_empty() {
                        return Err(SourceError::new(inc.span.clone(), "an include_tasks handler needs a `name:` (or `listen:`) to be notified by"));
                    }
                    let mut tasks = flat_handlers(p, at)?;
                    let h = std::sync::Arc::new(super::HandlerInclude { names, file: file.clone(), when: inc.when.clone(), span: inc.span.clone() });
                    for t in tasks.iter_mut() {
                        for (k, v) in &inc.vars {
                            t.vars.entry(k.clone()).or_insert_with(|| v.clone());
                        }
                        t.handler_of = Some(h.clone());
                    }
                    out.extend(tasks);
                }
                _ => return Err(SourceError::new(inc.span.clone(), "a handler that is an include_role, a loop over an include, or an include whose name is a template is not supported by recover (use include_tasks with a file name, or import_tasks)")),
            },
        }
    }
    Ok(out)
}

#[derive(Clone)]
pub(crate) struct LoadCtx {
    pub role_dir: Option<PathBuf>,
    pub playbook_dir: PathBuf,
    pub project_root: PathBuf,
    /// The roles (and parameters) loaded in this play so far: a dependency runs once per play.
    pub seen: std::rc::Rc<std::cell::RefCell<Vec<(String, String)>>>,
    /// Handlers of roles brought in by `import_role`: they join the play's (or, loaded for an
    /// include, the include's), as in ansible-core.
    pub imported_handlers: std::rc::Rc<std::cell::RefCell<Vec<Task>>>,
    /// The defaults and vars of roles brought in by `import_role`, exposed to the play.
    pub imported_vars: std::rc::Rc<std::cell::RefCell<(Vars, Vars)>>,
}

/// A role beside the playbook, in the project, then along the search path (see `assets`).
fn find_role(name: &str, dir: &Path, root: &Path) -> Option<PathBuf> {
    let cfg = crate::ansible_cfg::current();
    // `namespace.collection.role`: in a collection along collections_path.
    let parts: Vec<&str> = name.split('.').collect();
    if parts.len() == 3 {
        let mut paths = cfg.paths("collections_path");
        paths.extend(cfg.paths("collections_paths"));
        if let Some(home) = std::env::var_os("HOME") {
            paths.push(PathBuf::from(home).join(".ansible/collections"));
        }
        paths.push(PathBuf::from("/usr/share/ansible/collections"));
        for p in paths {
            for base in [p.join("ansible_collections"), p.clone()] {
                let r = base.join(parts[0]).join(parts[1]).join("roles").join(parts[2]);
                if r.is_dir() {
                    return Some(r);
                }
            }
        }
    }
    let mut c = vec![dir.join("roles").join(name), root.join("roles").join(name)];
    c.extend(cfg.paths("roles_path").into_iter().map(|p| p.join(name)));
    c.push(dir.join(name));
    c.extend(crate::assets::role_candidates(name, dir));
    // Looked in, in order: a saved plan notices a role that appears earlier on the path later.
    for p in &c {
        crate::inputs::note(p);
    }
    c.into_iter().find(|p| p.is_dir() && (p.join("tasks").is_dir() || p.join("meta").is_dir() || p.join("defaults").is_dir() || p.join("handlers").is_dir() || p.join("vars").is_dir()))
}

fn yaml_in(dir: &Path) -> Option<PathBuf> {
    let c = ["main.yml", "main.yaml", "main"].map(|f| dir.join(f));
    // Looked for: a saved plan notices a `main.yml` added here later.
    for p in &c {
        crate::inputs::note(p);
    }
    c.into_iter().find(|p| p.is_file())
}

/// The keywords `node` (a block, a role entry, `apply:`) passes down to its tasks.
fn inherited(node: &Node) -> SResult<Inherited> {
    Ok(Inherited {
        when: conds(node.get("when"))?,
        tags: strings(node.get("tags"))?,
        vars: mapping(node.get("vars"), "vars")?,
        r#become: flag(node, "become")?,
        become_user: opt_string(node, "become_user")?,
        become_kw: become_kw(node)?,
        ignore_errors: flag(node, "ignore_errors")?,
        no_log: flag(node, "no_log")?,
        environment: node.get("environment").map(|e| vec![(e.to_json(), e.span.clone())]).unwrap_or_default(),
        module_defaults: module_defaults(node)?,
        remote_user: opt_string(node, "remote_user")?,
        // `connection: local` on a block or task runs it on this machine, as `delegate_to: localhost`.
        delegate_to: opt_string(node, "delegate_to")?.or_else(|| (node.get("connection").and_then(Node::as_str) == Some("local")).then(|| "localhost".to_string())),
        run_once: flag(node, "run_once")?,
        check_mode: flag(node, "check_mode")?,
        timeout: opt_u64(node, "timeout")?,
        any_errors_fatal: opt_bool(node, "any_errors_fatal")?,
        throttle: opt_u64(node, "throttle")?,
    })
}

/// The task lists of a tasks file (for an include resolved at run time).
pub(crate) fn load_tasks_file(path: &Path, ctx: &LoadCtx) -> SResult<Vec<Item>> {
    let node = yaml::load_file(path)?;
    item_list(Some(&node), dir_of(path), ctx, 1)
}

/// An `include_role` resolved at run time: its tasks (role vars on them) and its defaults.
pub(crate) fn load_role_dynamic(name: &str, tasks_from: Option<&str>, vars_from: Option<&str>, defaults_from: Option<&str>, at: &Span, ctx: &LoadCtx) -> SResult<(Vars, Vec<Item>, Vec<Task>, Vars)> {
    let node = Node { value: Value::Null, span: at.clone() };
    let entry = RoleEntry {
        name: name.to_string(),
        vars: Vars::new(),
        inherit: Inherited::default(),
        tasks_from: tasks_from.map(str::to_string),
        vars_from: vars_from.map(str::to_string),
        defaults_from: defaults_from.map(str::to_string),
        handlers_from: None,
    };
    // Its own collector: roles it imports bring their handlers with the include.
    let own = LoadCtx { imported_handlers: Default::default(), imported_vars: Default::default(), ..ctx.clone() };
    let mut r = load_role(&entry, &node, &own, false, 0)?;
    r.handlers.extend(own.imported_handlers.borrow_mut().drain(..));
    Ok((r.defaults, r.tasks, r.handlers, r.exported_vars))
}

fn item_list(node: Option<&Node>, dir: &Path, ctx: &LoadCtx, depth: usize) -> SResult<Vec<Item>> {
    let Some(node) = node else { return Ok(Vec::new()) };
    if depth > 20 {
        return Err(node.error("import_tasks nested more than 20 levels (a loop?)"));
    }
    let items = match &node.value {
        Value::Null => return Ok(Vec::new()),
        Value::Seq(items) => items,
        _ => return Err(node.error(format!("a task list must be a list of tasks, found {}", node.kind()))),
    };
    let mut out = Vec::new();
    for item in items {
        load_item(item, dir, ctx, depth, &mut out)?;
    }
    Ok(out)
}

/// `ansible.builtin.X`, `ansible.legacy.X` or `X`: which of `names` `node` uses, and its value.
fn keyword<'a>(node: &'a Node, names: &[&str]) -> Option<(String, &'a Node, &'a Node)> {
    for (k, v) in node.as_map().unwrap_or_default() {
        let key = k.scalar_string().unwrap_or_default();
        let short = key.strip_prefix("ansible.builtin.").or_else(|| key.strip_prefix("ansible.legacy.")).unwrap_or(&key);
        if names.contains(&short) {
            return Some((short.to_string(), k, v));
        }
    }
    None
}

fn load_item(item: &Node, dir: &Path, ctx: &LoadCtx, depth: usize, out: &mut Vec<Item>) -> SResult<()> {
    if item.as_map().is_none() {
        return Err(item.error(format!("a task must be a mapping, found {}", item.kind())));
    }
    if item.get("block").is_some() {
        return load_block(item, dir, ctx, depth, out);
    }
    for k in ["rescue", "always"] {
        if let Some(n) = item.get(k) {
            return Err(n.error(format!("`{k}` belongs to a `block:`, and this task has none")));
        }
    }
    if let Some((kw, key, file)) = keyword(item, &["import_tasks", "include_tasks", "include"]) {
        if kw == "include" {
            return Err(key.error("`include` was removed from Ansible (2.16): use `include_tasks` or `import_tasks`"));
        }
        return load_include_tasks(item, &kw, file, dir, ctx, depth, out);
    }
    if let Some((kw, _, spec)) = keyword(item, &["import_role", "include_role"]) {
        return load_include_role(item, &kw, spec, ctx, depth, out);
    }
    out.push(Item::Task(Box::new(load_task(item, ctx)?)));
    Ok(())
}

fn load_block(item: &Node, dir: &Path, ctx: &LoadCtx, depth: usize, out: &mut Vec<Item>) -> SResult<()> {
    for (k, _) in item.as_map().unwrap_or_default() {
        let key = k.scalar_string().unwrap_or_default();
        if !matches!(key.as_str(), "block" | "rescue" | "always") && !BLOCK_KEYS.contains(&key.as_str()) {
            let mut known: Vec<&str> = BLOCK_KEYS.to_vec();
            known.extend(["block", "rescue", "always"]);
            let e = k.error(format!("`{key}` is not a block keyword"));
            return Err(match closest(&key, &known) {
                Some(c) => e.help(format!("did you mean '{c}'?")),
                None => e.help("a module goes on a task inside the block; a block takes block, rescue, always and task keywords such as when, become, vars, tags"),
            });
        }
    }
    refuse_unsupported_values(item)?;
    let inherit = inherited(item)?;
    let mut parts = [Vec::new(), Vec::new(), Vec::new()];
    for (i, k) in ["block", "rescue", "always"].iter().enumerate() {
        parts[i] = item_list(item.get(k), dir, ctx, depth + 1)?;
        inherit.push_into(&mut parts[i]);
    }
    let [block, rescue, always] = parts;
    out.push(Item::Block(Box::new(Block { name: opt_string(item, "name")?, span: item.span.clone(), block, rescue, always })));
    Ok(())
}

/// The keys an include or import takes besides its own.
const INCLUDE_KEYS: &[&str] = &["name", "listen", "when", "tags", "vars", "loop", "with_items", "loop_control", "apply", "become", "become_user", "become_method", "become_flags", "become_exe", "ignore_errors", "no_log", "environment", "delegate_to", "run_once", "any_errors_fatal", "timeout", "check_mode", "diff", "args", "remote_user"];
/// ansible-core's keywords of a dynamic include (`include_tasks`, `include_role`): they are the
/// include's own (its `when`, whether its failure to load is ignored); `apply:` gives keywords
/// to its tasks. Any other is "not a valid attribute" for it, as ansible-core says at load.
const DYNAMIC_INCLUDE_KEYS: &[&str] = &["name", "listen", "when", "tags", "vars", "loop", "with_items", "loop_control", "ignore_errors", "no_log", "register", "run_once", "timeout", "args", "collections"];

fn load_include_tasks(item: &Node, kw: &str, file: &Node, dir: &Path, ctx: &LoadCtx, depth: usize, out: &mut Vec<Item>) -> SResult<()> {
    let dynamic = kw == "include_tasks";
    // `include_tasks: file=x.yml`: free-form words, as ansible-core parses them.
    let kv = kv_spec(file);
    let file = kv.as_ref().unwrap_or(file);
    // `apply:` goes with the file, in the include's own mapping (or its `args:`).
    let apply_node = file.get("apply").or_else(|| item.get("args").and_then(|a| a.get("apply")));
    if let Some(m) = file.as_map() {
        for (k, _) in m {
            let key = k.scalar_string().unwrap_or_default();
            if !matches!(key.as_str(), "file" | "apply" | "_raw_params") {
                return Err(k.error(format!("`{key}` is not an argument of {kw}")).help("it takes file (and apply, for include_tasks)"));
            }
            if key == "apply" && !dynamic {
                return Err(k.error("`apply` is for include_tasks; an import's keywords apply to its tasks already"));
            }
        }
    }
    // `include_tasks: file.yml`, `include_tasks: {file: file.yml}` or `args: {file: ...}`.
    let file = file.get("file").or_else(|| item.get("args").and_then(|a| a.get("file"))).unwrap_or(file);
    let rel = file.as_str().ok_or_else(|| file.error(format!("{kw} takes a file name")))?;
    for (k, _) in item.as_map().unwrap_or_default() {
        let key = k.scalar_string().unwrap_or_default();
        if key.ends_with(kw) {
            continue;
        }
        if dynamic && INCLUDE_KEYS.contains(&key.as_str()) && !DYNAMIC_INCLUDE_KEYS.contains(&key.as_str()) {
            return Err(k.error(format!("'{key}' is not a valid attribute for {kw} (as in ansible-core)")).help("give it to the included tasks with `apply:`"));
        }
        if !INCLUDE_KEYS.contains(&key.as_str()) || key == "apply" || (!dynamic && matches!(key.as_str(), "loop" | "with_items" | "loop_control")) {
            return Err(k.error(format!("`{key}` on {kw} is not supported")).help(if dynamic {
                "an include takes when, tags, vars, loop, loop_control, apply and the task keywords of a block"
            } else {
                "an import takes when, tags, vars and the task keywords of a block (loops need include_tasks)"
            }));
        }
    }
    if dynamic || crate::template::is_template(rel) {
        if !dynamic {
            return Err(file.error("import_tasks is static: its file name cannot be a template").help("use include_tasks for a name that depends on variables"));
        }
        if let Some(a) = apply_node {
            for (k, _) in a.as_map().ok_or_else(|| a.error("`apply` takes a mapping of task keywords"))? {
                let key = k.scalar_string().unwrap_or_default();
                if !BLOCK_KEYS.contains(&key.as_str()) {
                    return Err(k.error(format!("`{key}` in apply is not a task keyword")));
                }
            }
        }
        let apply = match apply_node {
            Some(a) => inherited(a)?,
            None => Inherited::default(),
        };
        let mut inc = include_of(item, IncludeKind::Tasks { file: rel.to_string() }, apply, dir, ctx)?;
        if !crate::template::is_template(rel) {
            let p = find_tasks_file(rel, dir, ctx).ok_or_else(|| file.error(format!("include_tasks: no such file {}", dir.join(rel).display())))?;
            let inner = yaml::load_file(&p).map_err(|e| if e.span.line == 0 { file.error(e.message) } else { e })?;
            // A task the file cannot load (a collection's module, an argument recover does not
            // know) fails the include when a host reaches it, as in ansible-core: a role's
            // include for another platform, skipped by its `when`, must not stop the play.
            if let Ok(mut items) = item_list(Some(&inner), p.parent().unwrap_or(dir), ctx, depth + 1) {
                let apply = inc.inherit.clone();
                apply.push_into(&mut items);
                inc.preloaded = Some(items);
            }
        }
        out.push(Item::Include(Box::new(inc)));
        return Ok(());
    }
    let p = find_tasks_file(rel, dir, ctx).ok_or_else(|| file.error(format!("import_tasks: no such file {}", dir.join(rel).display())))?;
    let inner = yaml::load_file(&p).map_err(|e| if e.span.line == 0 { file.error(e.message) } else { e })?;
    let mut items = item_list(Some(&inner), p.parent().unwrap_or(dir), ctx, depth + 1)?;
    // An import is its tasks: its keywords are theirs, as a block's.
    let inherit = inherited(item)?;
    inherit.push_into(&mut items);
    out.extend(items);
    Ok(())
}

/// The folder of a file: `.` for a bare name (whose parent is the empty path).
fn dir_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// A tasks file named by an include: beside the including file, in the role's `tasks/`, then
/// beside the playbook.
pub(crate) fn find_tasks_file(rel: &str, dir: &Path, ctx: &LoadCtx) -> Option<PathBuf> {
    let mut c = vec![dir.join(rel)];
    if let Some(r) = &ctx.role_dir {
        c.push(r.join("tasks").join(rel));
        c.push(r.join(rel));
    }
    c.push(ctx.playbook_dir.join(rel));
    c.into_iter().find(|p| p.is_file())
}

/// `include_role: name=x tasks_from=y` (free-form `k=v` words) as the mapping it stands for;
/// anything else as it is.
fn kv_spec(spec: &Node) -> Option<Node> {
    let Value::Str(s) = &spec.value else { return None };
    let words = split_kv(s).ok()?;
    let pairs: Vec<(String, String)> = words.iter().map(|w| kv_word(w)).collect::<Option<_>>()?;
    if pairs.is_empty() {
        return None;
    }
    let node = |v: Value| Node { span: spec.span.clone(), value: v };
    Some(node(Value::Map(pairs.into_iter().map(|(k, v)| (node(Value::Str(k)), node(Value::Str(v)))).collect())))
}

fn load_include_role(item: &Node, kw: &str, spec: &Node, ctx: &LoadCtx, depth: usize, out: &mut Vec<Item>) -> SResult<()> {
    let dynamic = kw == "include_role";
    let kv = kv_spec(spec);
    let spec = kv.as_ref().unwrap_or(spec);
    let spec = if matches!(spec.value, Value::Map(_)) { spec } else { item.get("args").unwrap_or(spec) };
    let mut name = None;
    let mut from: [Option<String>; 4] = Default::default();
    let mut public = !dynamic;
    match &spec.value {
        Value::Map(entries) => {
            for (k, v) in entries {
                let key = k.scalar_string().unwrap_or_default();
                match key.as_str() {
                    "name" | "role" => name = v.scalar_string(),
                    "tasks_from" => from[0] = v.scalar_string(),
                    "vars_from" => from[1] = v.scalar_string(),
                    "defaults_from" => from[2] = v.scalar_string(),
                    "handlers_from" => from[3] = v.scalar_string(),
                    "public" => {
                        public = match &v.value {
                            Value::Bool(b) => *b,
                            Value::Str(s) if ["yes", "true", "on", "1"].contains(&s.to_lowercase().as_str()) => true,
                            Value::Str(s) if ["no", "false", "off", "0"].contains(&s.to_lowercase().as_str()) => false,
                            _ => return Err(v.error("`public` takes true or false")),
                        }
                    }
                    "apply" if dynamic => {}
                    "allow_duplicates" | "rolespec_validate" => {}
                    other => return Err(k.error(format!("`{other}` on {kw} is not supported by recover")).help("it takes name, tasks_from, vars_from, defaults_from, handlers_from (and apply)")),
                }
            }
        }
        _ => name = spec.scalar_string(),
    }
    let name = name.ok_or_else(|| spec.error(format!("{kw} needs `name:` (the role)")))?;
    for (k, _) in item.as_map().unwrap_or_default() {
        let key = k.scalar_string().unwrap_or_default();
        if key.ends_with(kw) || key == "args" {
            continue;
        }
        if dynamic && INCLUDE_KEYS.contains(&key.as_str()) && !DYNAMIC_INCLUDE_KEYS.contains(&key.as_str()) {
            return Err(k.error(format!("'{key}' is not a valid attribute for {kw} (as in ansible-core)")).help("give it to the included role's tasks with `apply:`"));
        }
        if !INCLUDE_KEYS.contains(&key.as_str()) || (!dynamic && matches!(key.as_str(), "loop" | "with_items" | "loop_control")) {
            return Err(k.error(format!("`{key}` on {kw} is not supported")));
        }
    }
    let templated = crate::template::is_template(&name) || from.iter().flatten().any(|f| crate::template::is_template(f));
    if !dynamic {
        if templated {
            return Err(spec.error("import_role is static: its names cannot be templates").help("use include_role"));
        }
        let mut inherit = inherited(item)?;
        let vars = std::mem::take(&mut inherit.vars);
        let entry = RoleEntry { name, vars, inherit, tasks_from: from[0].clone(), vars_from: from[1].clone(), defaults_from: from[2].clone(), handlers_from: from[3].clone() };
        let loaded = load_role(&entry, spec, ctx, false, depth + 1)?;
        // Its defaults are the role's tasks' own (the play's are set already).
        let defaults = std::sync::Arc::new(loaded.defaults);
        let mut tasks = loaded.tasks;
        walk_mut(&mut tasks, &mut |t| if t.defaults.is_none() { t.defaults = Some(defaults.clone()) }, &mut |_| {});
        let mut handlers = loaded.handlers;
        for h in &mut handlers {
            if h.defaults.is_none() {
                h.defaults = Some(defaults.clone());
            }
        }
        // A role imported twice (another tasks_from) has its handlers once.
        let mut known = ctx.imported_handlers.borrow_mut();
        for h in handlers {
            if !known.iter().any(|k| k.span == h.span) {
                known.push(h);
            }
        }
        drop(known);
        // An imported role's defaults and vars are the play's (unless `public: false`).
        if public {
            let mut v = ctx.imported_vars.borrow_mut();
            v.0.extend(defaults.iter().map(|(k, x)| (k.clone(), x.clone())));
            v.1.extend(loaded.exported_vars);
        }
        out.extend(tasks);
        return Ok(());
    }
    if let Some(a) = spec.get("apply") {
        for (k, _) in a.as_map().unwrap_or_default() {
            let key = k.scalar_string().unwrap_or_default();
            if !BLOCK_KEYS.contains(&key.as_str()) {
                return Err(k.error(format!("`{key}` in apply is not a task keyword")));
            }
        }
    }
    let apply = match spec.get("apply") {
        Some(a) => inherited(a)?,
        None => Inherited::default(),
    };
    let kind = IncludeKind::Role { name: name.clone(), tasks_from: from[0].clone(), vars_from: from[1].clone(), defaults_from: from[2].clone() };
    let mut inc = include_of(item, kind, apply, &ctx.playbook_dir, ctx)?;
    // A role whose tasks cannot load fails when a host reaches the include (see include_tasks).
    inc.public = public;
    let loaded = if templated { None } else { load_role_dynamic(&name, from[0].as_deref(), from[1].as_deref(), from[2].as_deref(), &spec.span, ctx).ok() };
    if let Some((defaults, mut tasks, mut handlers, vars)) = loaded {
        inc.exports = Some((defaults.clone(), vars));
        let defaults = std::sync::Arc::new(defaults);
        for h in &mut handlers {
            if h.defaults.is_none() {
                h.defaults = Some(defaults.clone());
            }
        }
        inc.handlers = handlers;
        let apply = inc.inherit.clone();
        walk_mut(&mut tasks, &mut |t| {
            apply.apply(t);
            if t.defaults.is_none() {
                t.defaults = Some(defaults.clone());
            }
        }, &mut |i| i.inherit = i.inherit.under(&apply));
        inc.preloaded = Some(tasks);
    }
    out.push(Item::Include(Box::new(inc)));
    Ok(())
}

/// An include's own parts: its `when`, `tags`, `vars` and loop, and what goes to its tasks
/// (`apply:`, and its own keywords other than those, as a block's).
fn include_of(item: &Node, kind: IncludeKind, apply: Inherited, dir: &Path, ctx: &LoadCtx) -> SResult<Include> {
    // ansible-core 2.19: the include's own keywords are the include's; only `apply:` reaches
    // its tasks.
    let inherit = apply;
    let (loop_items, loop_var) = loop_of(item)?;
    Ok(Include {
        kind,
        name: opt_string(item, "name")?,
        span: item.span.clone(),
        when: conds(item.get("when"))?,
        tags: strings(item.get("tags"))?,
        vars: mapping(item.get("vars"), "vars")?,
        loop_items,
        loop_var,
        inherit,
        dir: dir.to_path_buf(),
        role_dir: ctx.role_dir.clone(),
        preloaded: None,
        handlers: Vec::new(),
        public: false,
        exports: None,
        listen: strings(item.get("listen"))?,
        ignore_errors: matches!(flag(item, "ignore_errors")?, Some(super::Flag::Fixed(true))),
    })
}

/// `loop`/`with_items` and `loop_control.loop_var` of an include.
fn loop_of(node: &Node) -> SResult<(Option<(Json, Span)>, String)> {
    let l = node.get("loop").or_else(|| node.get("with_items"));
    let var = match node.get("loop_control") {
        Some(lc) => lc.get("loop_var").and_then(Node::scalar_string).unwrap_or_else(|| "item".into()),
        None => "item".into(),
    };
    Ok((l.map(|n| (n.to_json(), n.span.clone())), var))
}

/// `module_defaults:` of a play, block or task: a mapping of module names to default
/// arguments (or a list of such mappings). A `group/...` name is a collection's action group:
/// recover runs no collection's modules, so it applies to none of its tasks (said at load).
fn module_defaults(node: &Node) -> SResult<Vec<(Json, Span)>> {
    let Some(md) = node.get("module_defaults") else { return Ok(Vec::new()) };
    let maps: Vec<&Node> = match &md.value {
        Value::Seq(items) => items.iter().collect(),
        Value::Map(_) => vec![md],
        Value::Null => Vec::new(),
        _ => return Err(md.error("`module_defaults` takes a mapping of module names to their default arguments")),
    };
    let mut out = Vec::new();
    for m in maps {
        let entries = m.as_map().ok_or_else(|| m.error("`module_defaults` takes a mapping of module names to their default arguments"))?;
        for (k, v) in entries {
            let key = k.scalar_string().unwrap_or_default();
            if key.starts_with("group/") {
                eprintln!("[WARNING]: {}: module_defaults '{key}' is a collection's action group; recover runs none of its modules", k.span);
            }
            if !matches!(v.value, Value::Map(_) | Value::Null) && !matches!(&v.value, Value::Str(t) if crate::template::is_template(t)) {
                return Err(v.error(format!("module_defaults for '{key}' must be a mapping of arguments")));
            }
        }
        out.push((m.to_json(), m.span.clone()));
    }
    Ok(out)
}

/// A boolean keyword, or a template that gives one (`ignore_errors: "{{ x }}"`).
fn flag(node: &Node, key: &str) -> SResult<Option<Flag>> {
    match node.get(key) {
        None => Ok(None),
        Some(v) => match &v.value {
            Value::Str(s) if crate::template::is_template(s) => Ok(Some(Flag::Expr(Cond { expr: s.clone(), span: v.span.clone() }))),
            _ => Ok(opt_bool(node, key)?.map(Flag::Fixed)),
        },
    }
}

fn load_task(node: &Node, ctx: &LoadCtx) -> SResult<Task> {
    let entries = node.as_map().ok_or_else(|| node.error(format!("a task must be a mapping, found {}", node.kind())))?;
    let mut module: Option<(&Node, &Node, String)> = None;
    let mut with: Option<(&Node, String)> = None;
    for (k, v) in entries {
        let key = k.scalar_string().unwrap_or_default();
        // `backup: {path: ...}` is the module; `backup: false` the keyword.
        let backup_module = key == "backup" && matches!(v.value, Value::Map(_));
        if TASK_KEYS.contains(&key.as_str()) && !backup_module && !key.starts_with("with_") {
            continue;
        }
        if TASK_REFUSED.contains(&key.as_str()) {
            return Err(k.error(format!("task keyword `{key}` is not supported by recover yet")));
        }
        if let Some(l) = key.strip_prefix("with_") {
            if !WITH_LOOPS.contains(&key.as_str()) {
                return Err(k.error(format!("`{key}`: the lookup '{l}' is not supported by recover")).help(format!("loops: loop, {}", WITH_LOOPS.join(", "))));
            }
            if let Some((prev, _)) = with {
                return Err(k.error(format!("a task takes one loop, but this one has `{}` and `{key}`", prev.scalar_string().unwrap_or_default())));
            }
            with = Some((k, key.clone()));
            continue;
        }
        let short = crate::modules::short_name(&key).to_string();
        if crate::modules::get(&short).is_none() {
            let mut names: Vec<&str> = crate::modules::names();
            names.extend(TASK_KEYS);
            let modules = crate::modules::names().join(", ");
            if short.contains('.') {
                return Err(k.error(format!("module '{key}' is from a collection; recover runs the ansible.builtin modules it has built in")).help(format!("modules: {modules}")));
            }
            if let Some(why) = crate::modules::not_built(&short) {
                return Err(k.error(why).help(format!("modules: {modules}")));
            }
            let help = match closest(&key, &names) {
                Some(c) => format!("did you mean '{c}'? modules: {modules}"),
                None => format!("not a task keyword and not a module; modules: {modules}"),
            };
            return Err(k.error(format!("unknown task key or module '{key}'")).help(help));
        }
        if let Some((prev, _, _)) = module {
            return Err(k.error(format!("a task runs one module, but this one names two: '{}' and '{key}'", prev.scalar_string().unwrap_or_default())));
        }
        module = Some((k, v, short));
    }
    // `action: module args` / `local_action: module args` (or a mapping with `module:`).
    let mut action_args: Option<(String, &Node, Span)> = None;
    let mut local = false;
    for key in ["action", "local_action"] {
        let Some(a) = node.get(key) else { continue };
        if module.is_some() || action_args.is_some() {
            return Err(a.error(format!("`{key}` names a module, and this task names another")));
        }
        local = key == "local_action";
        let (m, span) = match &a.value {
            Value::Str(s) => (s.split_whitespace().next().unwrap_or_default().to_string(), a.span.clone()),
            Value::Map(_) => (a.get("module").and_then(Node::scalar_string).ok_or_else(|| a.error(format!("`{key}` as a mapping needs `module:`")))?, a.span.clone()),
            _ => return Err(a.error(format!("`{key}` takes `module args` or a mapping with `module:`"))),
        };
        let short = crate::modules::short_name(&m).to_string();
        if crate::modules::get(&short).is_none() {
            let why = crate::modules::not_built(&short).unwrap_or_else(|| format!("unknown module '{m}'"));
            return Err(a.error(format!("{key}: {why}")).help(format!("modules: {}", crate::modules::names().join(", "))));
        }
        action_args = Some((short, a, span));
    }
    let mut args = serde_json::Map::new();
    let mut arg_spans = Vec::new();
    let (mkey_span, mname, mval_span) = if let Some((short, a, span)) = action_args {
        match &a.value {
            Value::Str(s) => {
                let rest = s.trim_start().split_once(char::is_whitespace).map(|(_, r)| r.trim()).unwrap_or("");
                if !rest.is_empty() {
                    free_form(&short, rest, &mut args);
                }
            }
            _ => {
                for (k, v) in a.as_map().unwrap_or_default() {
                    let key = k.scalar_string().unwrap_or_default();
                    if key == "module" {
                        continue;
                    }
                    arg_spans.push((key.clone(), k.span.clone()));
                    args.insert(key, v.to_json());
                }
            }
        }
        (span.clone(), short, span)
    } else {
        let (mkey, mval, mname) = module.ok_or_else(|| node.error("this task names no module").help(format!("add one of: {}", crate::modules::names().join(", "))))?;
        match &mval.value {
            Value::Null => {}
            Value::Map(m) => {
                for (k, v) in m {
                    let key = k.scalar_string().unwrap_or_default();
                    arg_spans.push((key.clone(), k.span.clone()));
                    args.insert(key, v.to_json());
                }
            }
            Value::Str(s) => free_form(&mname, s, &mut args),
            _ => {
                let v = mval.to_json();
                args.insert("_raw_params".into(), v);
            }
        }
        (mkey.span.clone(), mname, mval.span.clone())
    };
    if let Some(extra) = node.get("args") {
        for (k, v) in extra.as_map().ok_or_else(|| extra.error("`args` must be a mapping"))? {
            let key = k.scalar_string().unwrap_or_default();
            arg_spans.push((key.clone(), k.span.clone()));
            args.insert(key, v.to_json());
        }
    }
    if !arg_spans.iter().any(|(n, _)| n == "_raw_params") {
        arg_spans.push(("_raw_params".into(), mval_span));
    }
    refuse_unsupported_values(node)?;
    let (loop_items, loop_var) = {
        let l = node.get("loop");
        if let (Some(_), Some((k, w))) = (node.get("loop"), &with) {
            return Err(k.error(format!("a task takes one loop, but this one has `loop` and `{w}`")));
        }
        if let Some(n) = node.get("loop") {
            let ok = match &n.value {
                Value::Seq(_) | Value::Null => true,
                _ => n.as_str().is_some_and(crate::template::is_template),
            };
            if !ok {
                return Err(n.error(format!("`loop` takes a list (or a template that gives one), found {}", n.kind())));
            }
        }
        let var = match node.get("loop_control") {
            Some(lc) => lc.get("loop_var").and_then(Node::scalar_string).unwrap_or_else(|| "item".into()),
            None => "item".into(),
        };
        (l.map(|n| (n.to_json(), n.span.clone())), var)
    };
    let mut loop_control = super::LoopControl::default();
    if let Some(lc) = node.get("loop_control") {
        for (k, v) in lc.as_map().ok_or_else(|| lc.error("`loop_control` must be a mapping"))? {
            match k.as_str().unwrap_or("") {
                "loop_var" => {}
                "label" => loop_control.label = v.scalar_string(),
                "index_var" => loop_control.index_var = v.scalar_string(),
                "extended" => loop_control.extended = matches!(v.value, Value::Bool(true)) || v.as_str().is_some_and(|s| matches!(s, "yes" | "true" | "True")),
                "extended_allitems" => {}
                "pause" => {
                    loop_control.pause = Some(match &v.value {
                        Value::Int(n) => *n as f64,
                        Value::Float(f) => *f,
                        _ => return Err(v.error("`pause` takes seconds")),
                    })
                }
                "break_when" => loop_control.break_when = conds(Some(v))?,
                other => return Err(k.error(format!("unknown loop_control key '{other}'")).help("loop_var, label, index_var, extended, pause, break_when")),
            }
        }
    }
    let mut delegate_to = opt_string(node, "delegate_to")?.or_else(|| (node.get("connection").and_then(Node::as_str) == Some("local")).then(|| "localhost".to_string()));
    if local {
        if delegate_to.is_some() {
            return Err(node.error("local_action runs on localhost: it takes no `delegate_to`"));
        }
        delegate_to = Some("localhost".into());
    }
    let poll_zero = match (opt_u64(node, "async")?, node.get("poll")) {
        (Some(_), Some(p)) if opt_u64(node, "poll")? == Some(0) => {
            if !matches!(mname.as_str(), "command" | "shell") {
                return Err(p.error(format!("`async` with `poll: 0` on `{mname}` is not supported by recover (it starts `command` and `shell` steps in the background)")).help("give `poll:` a number of seconds above 0, or use command/shell"));
            }
            true
        }
        _ => false,
    };
    let task = Task {
        name: opt_string(node, "name")?,
        span: node.span.clone(),
        module: mname,
        module_span: mkey_span,
        args: Json::Object(args),
        arg_spans,
        when: conds(node.get("when"))?,
        register: opt_string(node, "register")?,
        r#become: flag(node, "become")?,
        become_user: opt_string(node, "become_user")?,
        become_kw: become_kw(node)?,
        loop_items: match &with {
            Some((k, w)) => node.get(w).map(|n| (json!({ "__with": w.trim_start_matches("with_"), "terms": n.to_json() }), k.span.clone())),
            None => loop_items,
        },
        loop_var,
        changed_when: conds(node.get("changed_when"))?,
        failed_when: conds(node.get("failed_when"))?,
        until: conds(node.get("until"))?,
        retries: node.get("retries").map(Node::to_json),
        delay: node.get("delay").map(Node::to_json),
        ignore_errors: flag(node, "ignore_errors")?,
        ignore_unreachable: opt_bool(node, "ignore_unreachable")?,
        any_errors_fatal: opt_bool(node, "any_errors_fatal")?,
        environment: node.get("environment").map(|e| vec![(e.to_json(), e.span.clone())]).unwrap_or_default(),
        module_defaults: module_defaults(node)?,
        remote_user: opt_string(node, "remote_user")?,
        delegate_to,
        delegate_facts: opt_bool(node, "delegate_facts")?.unwrap_or(false),
        handler_of: None,
        run_once: flag(node, "run_once")?,
        check_mode: flag(node, "check_mode")?,
        diff: opt_bool(node, "diff")?,
        loop_control,
        defaults: None,
        notify: strings(node.get("notify"))?,
        listen: strings(node.get("listen"))?,
        tags: strings(node.get("tags"))?,
        read_only: opt_bool(node, "read_only")?.unwrap_or(false),
        timeout: opt_u64(node, "timeout")?,
        throttle: opt_u64(node, "throttle")?,
        async_secs: opt_u64(node, "async")?,
        poll_zero,
        vars: mapping(node.get("vars"), "vars")?,
        scope_vars: Vars::new(),
        no_log: flag(node, "no_log")?,
        role_dir: ctx.role_dir.clone(),
        declared: declared(node.get("destructive"))?,
    };
    if let Some(b) = node.get("backup").filter(|b| !matches!(b.value, Value::Map(_))) {
        let opt_out = matches!(b.value, Value::Bool(false)) || b.as_str().is_some_and(|s| matches!(s, "no" | "false"));
        if opt_out && (task.declared.is_some() || crate::modules::destructive(&task).is_some_and(|_| task.module != "command" && task.module != "shell")) {
            return Err(b.error("a destructive step cannot opt out of its verified pre-backup").help(
                "remove `backup: false`; if the step preserves the data itself (a rename), say so with `destructive: {preserves: ...}`",
            ));
        }
        if !opt_out && !matches!(b.value, Value::Bool(true)) {
            return Err(b.error("`backup` takes only true (the default) or false"));
        }
    }
    if let (Some(d), true) = (&task.declared, matches!(task.module.as_str(), "command" | "shell")) {
        if d.paths.is_empty() && d.services.is_empty() && d.preserves.is_none() {
            let at = node.get("destructive").unwrap_or(node);
            return Err(at.error("a destructive command names no paths: recover cannot back up what it does not know").help(
                "add `paths: [...]` (what it changes; a verified backup is taken first), `services: [...]` (what it stops), or `preserves: ...` (how it keeps the original)",
            ));
        }
    }
    if let Some(reg) = &task.register {
        if !is_identifier(reg) {
            return Err(node.get("register").map(|n| n.error(format!("`register: {reg}` is not a valid variable name"))).unwrap_or_else(|| node.error("bad register")));
        }
    }
    crate::modules::validate(&task)?;
    Ok(task)
}

fn declared(node: Option<&Node>) -> SResult<Option<super::Declared>> {
    let Some(node) = node else { return Ok(None) };
    match &node.value {
        Value::Bool(false) | Value::Null => Ok(None),
        Value::Bool(true) => Ok(Some(super::Declared::default())),
        Value::Map(entries) => {
            let mut d = super::Declared::default();
            for (k, v) in entries {
                match k.as_str().unwrap_or("") {
                    "reason" => d.reason = v.scalar_string(),
                    "paths" => d.paths = strings(Some(v))?,
                    "services" => d.services = strings(Some(v))?,
                    "preserves" => d.preserves = v.scalar_string(),
                    "tier" => {
                        let t = v.scalar_string().unwrap_or_default();
                        d.tier = Some(crate::safety::Tier::parse(&t).ok_or_else(|| v.error(format!("unknown tier '{t}'")).help("tiers: AUTO, STANDARD_HITL, CRITICAL_HITL, BLOCK"))?);
                    }
                    other => return Err(k.error(format!("unknown key '{other}' in `destructive`")).help("use reason, paths, services, tier, preserves")),
                }
            }
            Ok(Some(d))
        }
        _ => Err(node.error("`destructive` takes true or a mapping with reason, paths, services, tier, preserves")),
    }
}

/// `command: echo hi` keeps the string whole; `file: path=/x state=directory` is k=v, split as
/// Ansible's `parse_kv` splits: on spaces outside quotes and outside `{{ }}`, `{% %}`, `{# #}`.
/// Words that are not `k=v` are the free-form part (`_raw_params`).
fn free_form(module: &str, s: &str, args: &mut serde_json::Map<String, Json>) {
    if matches!(module, "command" | "shell" | "script" | "raw") {
        let (raw, params) = command_params(s);
        for (k, v) in params {
            args.insert(k, Json::String(v));
        }
        args.insert("_raw_params".into(), Json::String(raw));
        return;
    }
    let mut raw = Vec::new();
    let Ok(words) = split_kv(s) else {
        args.insert("_raw_params".into(), Json::String(s.to_string()));
        return;
    };
    for w in words {
        match kv_word(&w) {
            Some((k, v)) => {
                args.insert(k, Json::String(v));
            }
            None => raw.push(w),
        }
    }
    if !raw.is_empty() {
        args.insert("_raw_params".into(), Json::String(raw.join(" ")));
    }
}

/// The options ansible-core's `parse_kv(check_raw=True)` takes out of a command line
/// (`shell: make chdir=/src creates=/src/out`); every other word, `x=1` included, stays the
/// command's. The command keeps its own text (quotes, newlines) but for the words taken out.
fn command_params(s: &str) -> (String, Vec<(String, String)>) {
    const KEYS: &[&str] = &["creates", "removes", "chdir", "executable", "warn", "stdin", "stdin_add_newline", "strip_empty_ends"];
    // Words as ansible-core's split_args sees them: whitespace outside quotes and outside
    // `{{ }}`, `{% %}`, `{# #}` separates.
    let b: Vec<(usize, char)> = s.char_indices().collect();
    let mut words: Vec<(usize, usize)> = Vec::new();
    let (mut quote, mut depth, mut start, mut i) = (None::<char>, 0usize, None::<usize>, 0);
    while i < b.len() {
        let (at, c) = b[i];
        let next = b.get(i + 1).map(|x| x.1);
        if c.is_whitespace() && quote.is_none() && depth == 0 {
            if let Some(st) = start.take() {
                words.push((st, at));
            }
            i += 1;
            continue;
        }
        start.get_or_insert(at);
        match (c, quote) {
            ('\\', Some(_)) => i += 1,
            ('{', None) if matches!(next, Some('{') | Some('%') | Some('#')) => {
                depth += 1;
                i += 1;
            }
            ('}' | '%' | '#', None) if depth > 0 && next == Some('}') => {
                depth -= 1;
                i += 1;
            }
            ('\'' | '"', None) if depth == 0 => quote = Some(c),
            (q, Some(open)) if q == open => quote = None,
            _ => {}
        }
        i += 1;
    }
    if let Some(st) = start {
        words.push((st, s.len()));
    }
    let mut params = Vec::new();
    let mut out = String::new();
    let mut last = 0;
    for (st, end) in words {
        let w = &s[st..end];
        let Some((k, v)) = w.split_once('=') else { continue };
        if !KEYS.contains(&k) {
            continue;
        }
        let v = v.trim();
        let v = match (v.chars().next(), v.chars().last()) {
            (Some(q @ ('\'' | '"')), Some(l)) if v.len() >= 2 && q == l => &v[1..v.len() - 1],
            _ => v,
        };
        params.push((k.to_string(), v.to_string()));
        // The word goes, with the blanks before it (those after it if it is the first).
        out.push_str(s[last..st].trim_end_matches([' ', '\t']));
        last = end;
    }
    out.push_str(&s[last..]);
    if params.is_empty() {
        return (s.to_string(), params);
    }
    (out.trim_start_matches([' ', '\t']).to_string(), params)
}

#[cfg(test)]
pub(crate) fn command_params_for_test(s: &str) -> (String, Vec<(String, String)>) {
    command_params(s)
}

/// `key=value`, if `w` is one (a word of [`split_kv`], quotes already taken off).
fn kv_word(w: &str) -> Option<(String, String)> {
    let (k, v) = w.split_once('=')?;
    if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return None;
    }
    Some((k.to_string(), v.to_string()))
}

/// Splits `k=v k2='a b' k3={{ x | default('y z') }}` into words, as Ansible's
/// parse_kv does: whitespace separates, except inside quotes and `{{ }}` / `{% %}`.
pub fn split_kv(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut depth = 0usize;
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if quote.is_none() && c == '{' && matches!(next, Some('{') | Some('%')) {
            depth += 1;
            cur.push(c);
            cur.push(next.unwrap_or('{'));
            i += 2;
            continue;
        }
        if quote.is_none() && depth > 0 && matches!(c, '}' | '%') && next == Some('}') {
            depth -= 1;
            cur.push(c);
            cur.push('}');
            i += 2;
            continue;
        }
        match (c, quote) {
            ('\'', None) | ('"', None) if depth == 0 => quote = Some(c),
            (q, Some(open)) if q == open && depth == 0 => quote = None,
            (w, None) if w.is_whitespace() && depth == 0 => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
            }
            _ => cur.push(c),
        }
        i += 1;
    }
    if quote.is_some() {
        return Err("unclosed quote".into());
    }
    if depth > 0 {
        return Err("unclosed {{ or {%".into());
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    Ok(words)
}

pub fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_') && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn unknown_key(k: &Node, key: &str, known: &[&str], what: &str) -> SourceError {
    let e = k.error(format!("unknown {what} key or module '{key}'"));
    match closest(key, known) {
        Some(c) => e.help(format!("did you mean '{c}'?")),
        None => e,
    }
}

/// The known name closest to `word` by edit distance, if close enough to be a typo.
pub(crate) fn closest<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    known.iter().map(|k| (edit_distance(word, k), *k)).filter(|(d, k)| *d <= 2.max(k.len() / 4)).min().map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push((prev[j] + usize::from(ca != cb)).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

fn opt_string(node: &Node, key: &str) -> SResult<Option<String>> {
    match node.get(key) {
        None => Ok(None),
        Some(v) => match &v.value {
            Value::Null => Ok(None),
            Value::Seq(_) | Value::Map(_) => Err(v.error(format!("`{key}` must be text, found {}", v.kind()))),
            _ => Ok(v.scalar_string()),
        },
    }
}

fn opt_bool(node: &Node, key: &str) -> SResult<Option<bool>> {
    match node.get(key) {
        None => Ok(None),
        Some(v) => match &v.value {
            Value::Bool(b) => Ok(Some(*b)),
            Value::Str(s) if matches!(s.to_lowercase().as_str(), "true" | "yes" | "false" | "no") => Ok(Some(matches!(s.to_lowercase().as_str(), "true" | "yes"))),
            _ => Err(v.error(format!("`{key}` must be true or false, found {}", v.kind()))),
        },
    }
}

fn opt_u64(node: &Node, key: &str) -> SResult<Option<u64>> {
    match node.get(key) {
        None => Ok(None),
        Some(v) => match &v.value {
            Value::Int(n) if *n >= 0 => Ok(Some(*n as u64)),
            _ => Err(v.error(format!("`{key}` must be a whole number of seconds, found {}", v.kind()))),
        },
    }
}

fn mapping(node: Option<&Node>, what: &str) -> SResult<Vars> {
    match node {
        None => Ok(Vars::new()),
        Some(n) => match n.to_json() {
            Json::Object(m) => Ok(m.into_iter().collect()),
            Json::Null => Ok(Vars::new()),
            _ => Err(n.error(format!("`{what}` must be a mapping of names to values, found {}", n.kind()))),
        },
    }
}

fn strings(node: Option<&Node>) -> SResult<Vec<String>> {
    match node {
        None => Ok(Vec::new()),
        Some(n) => match &n.value {
            Value::Null => Ok(Vec::new()),
            Value::Seq(items) => items.iter().map(|i| i.scalar_string().ok_or_else(|| i.error("expected text"))).collect(),
            _ => Ok(vec![n.scalar_string().ok_or_else(|| n.error("expected text or a list of text"))?]),
        },
    }
}

fn conds(node: Option<&Node>) -> SResult<Vec<Cond>> {
    let Some(node) = node else { return Ok(Vec::new()) };
    let one = |n: &Node| -> SResult<Cond> {
        match &n.value {
            Value::Bool(b) => Ok(Cond { expr: if *b { "true".into() } else { "false".into() }, span: n.span.clone() }),
            _ => Ok(Cond { expr: n.scalar_string().ok_or_else(|| n.error("a condition must be an expression"))?, span: n.span.clone() }),
        }
    };
    match &node.value {
        Value::Seq(items) => items.iter().map(one).collect(),
        _ => Ok(vec![one(node)?]),
    }
}
