//! One task: its keywords, its module and arguments (a mapping, or Ansible's free-form
//! `k=v` line), its loop, its `destructive:` declaration, each checked against the module.


use serde_json::{json, Value as Json};

use super::kv::{free_form, is_identifier};
use super::{Catalog, Task};
use super::keywords::{become_kw, flag, module_defaults, refuse_unsupported_values, LoadCtx};
use super::fields::{closest, conds, mapping, opt_bool, opt_string, opt_u64, strings};
use crate::error::{SResult, Span};
use crate::template::Vars;
use crate::yaml::{Node, Value};

pub(super) const TASK_KEYS: &[&str] = &[
    "name", "when", "register", "become", "become_user", "become_method", "become_flags", "become_exe", "loop", "with_items",
    "loop_control", "changed_when", "failed_when", "ignore_errors", "notify", "listen", "tags", "read_only", "timeout",
    "vars", "no_log", "args", "check_mode", "destructive", "backup", "until", "retries", "delay", "environment", "module_defaults",
    "remote_user", "delegate_to", "delegate_facts", "run_once", "ignore_unreachable", "any_errors_fatal", "diff", "action",
    "local_action", "throttle", "collections", "port", "connection", "async", "poll",
];

/// Task keys Ansible has that recover refuses by name.
pub(super) const TASK_REFUSED: &[&str] = &["debugger"];

/// `with_<lookup>` loops: the lookup's results are the items.
pub(super) const WITH_LOOPS: &[&str] = &[
    "with_items", "with_list", "with_dict", "with_subelements", "with_nested", "with_cartesian", "with_together",
    "with_sequence", "with_fileglob", "with_first_found", "with_indexed_items", "with_random_choice", "with_lines",
    "with_file", "with_flattened", "with_inventory_hostnames", "with_env", "with_template",
];

/// `loop`/`with_items` and `loop_control.loop_var` of an include.
pub(super) fn loop_of(node: &Node) -> SResult<(Option<(Json, Span)>, String)> {
    let var = match node.get("loop_control") {
        Some(lc) => lc.get("loop_var").and_then(Node::scalar_string).unwrap_or_else(|| "item".into()),
        None => "item".into(),
    };
    if let Some(l) = node.get("loop") {
        return Ok((Some((l.to_json(), l.span.clone())), var));
    }
    // `with_<lookup>` (an include's too: `include_tasks` with `with_sequence`), as a task's.
    let with = node.as_map().unwrap_or_default().iter().find_map(|(k, v)| k.scalar_string().filter(|k| WITH_LOOPS.contains(&k.as_str())).map(|k| (k, v)));
    Ok((with.map(|(k, v)| (json!({ "__with": k.trim_start_matches("with_"), "terms": v.to_json() }), v.span.clone())), var))
}

pub(super) fn load_task(node: &Node, ctx: &LoadCtx) -> SResult<Task> {
    let entries = node.as_map().ok_or_else(|| node.error(format!("a task must be a mapping, found {}", node.kind())))?;
    let catalog = ctx.catalog;
    let scope = super::Scope { playbook_dir: &ctx.playbook_dir, role_dir: ctx.role_dir.as_deref(), collections: &ctx.collections };
    let (module, with) = module_and_loop_keys(entries, catalog, &scope)?;
    let (action_args, local) = action_of(node, module.is_some(), catalog, &scope)?;
    let (mkey_span, mname, args, arg_spans) = arguments(node, module, action_args, catalog)?;
    refuse_unsupported_values(node)?;
    let (loop_items, loop_var) = loop_items_of(node, &with)?;
    let loop_control = loop_control(node)?;
    let delegate_to = delegation(node, local)?;
    let poll_zero = poll_zero(node, &mname)?;
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
        loop_items,
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
    check_task(node, &task, catalog)?;
    // (A templated module's arguments are checked when it is named, at run time.)
    if !crate::template::is_template(&task.module) {
        catalog.validate(&task)?;
    }
    Ok(task)
}

/// `action: MODULE args`: the module (a `{{ template }}` whole) and the rest.
fn action_word(s: &str) -> (String, &str) {
    let s = s.trim_start();
    let end = if s.starts_with("{{") {
        s.find("}}").map(|i| i + 2).unwrap_or(s.len())
    } else {
        s.find(char::is_whitespace).unwrap_or(s.len())
    };
    (s[..end].to_string(), s[end..].trim())
}

/// The task's module key and its `with_*` loop key, each checked (an unknown key is named,
/// with "did you mean").
type ModuleKey<'a> = Option<(&'a Node, &'a Node, String)>;
fn module_and_loop_keys<'a>(entries: &'a [(Node, Node)], catalog: &dyn Catalog, scope: &super::Scope<'_>) -> SResult<(ModuleKey<'a>, Option<(&'a Node, String)>)> {
    let mut module: ModuleKey<'_> = None;
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
        let short = match catalog.resolve(&key, scope) {
            Ok(short) => short,
            Err(why) => {
                let modules = catalog.names().join(", ");
                if let Some(why) = why {
                    return Err(k.error(why).help(format!("modules: {modules}")));
                }
                let mut names: Vec<String> = catalog.names();
                names.extend(TASK_KEYS.iter().map(|k| k.to_string()));
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                let help = match closest(&key, &names) {
                    Some(c) => format!("did you mean '{c}'? modules: {modules}"),
                    None => format!("not a task keyword and not a module; modules: {modules}"),
                };
                return Err(k.error(format!("unknown task key or module '{key}'")).help(help));
            }
        };
        if let Some((prev, _, _)) = module {
            return Err(k.error(format!("a task runs one module, but this one names two: '{}' and '{key}'", prev.scalar_string().unwrap_or_default())));
        }
        module = Some((k, v, short));
    }
    Ok((module, with))
}

/// `action: module args` / `local_action: module args` (or a mapping with `module:`): the
/// module, its arguments' node, where; and whether it is a `local_action`.
fn action_of<'a>(node: &'a Node, has_module: bool, catalog: &dyn Catalog, scope: &super::Scope<'_>) -> SResult<(Option<(String, &'a Node, Span)>, bool)> {
    let mut action_args: Option<(String, &Node, Span)> = None;
    let mut local = false;
    for key in ["action", "local_action"] {
        let Some(a) = node.get(key) else { continue };
        if has_module || action_args.is_some() {
            return Err(a.error(format!("`{key}` names a module, and this task names another")));
        }
        local = key == "local_action";
        let (m, span) = match &a.value {
            Value::Str(s) => (action_word(s).0, a.span.clone()),
            Value::Map(_) => (a.get("module").and_then(Node::scalar_string).ok_or_else(|| a.error(format!("`{key}` as a mapping needs `module:`")))?, a.span.clone()),
            _ => return Err(a.error(format!("`{key}` takes `module args` or a mapping with `module:`"))),
        };
        // `action: '{{ module }}'`: the module is named when a host reaches the task.
        if crate::template::is_template(&m) {
            action_args = Some((m, a, span));
            continue;
        }
        let short = catalog.resolve(&m, scope).map_err(|why| a.error(format!("{key}: {}", why.unwrap_or_else(|| format!("unknown module '{m}'")))).help(format!("modules: {}", catalog.names().join(", "))))?;
        action_args = Some((short, a, span));
    }
    Ok((action_args, local))
}

/// The module's name and arguments (a mapping, a free-form line, `args:`), where each is written.
type Arguments = (Span, String, serde_json::Map<String, Json>, Vec<(String, Span)>);
fn arguments(node: &Node, module: ModuleKey<'_>, action_args: Option<(String, &Node, Span)>, catalog: &dyn Catalog) -> SResult<Arguments> {
    let mut args = serde_json::Map::new();
    let mut arg_spans = Vec::new();
    let (mkey_span, mname, mval_span) = if let Some((short, a, span)) = action_args {
        match &a.value {
            Value::Str(s) => {
                let (_, rest) = action_word(s);
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
        let (mkey, mval, mname) = module.ok_or_else(|| node.error("this task names no module").help(format!("add one of: {}", catalog.names().join(", "))))?;
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
    Ok((mkey_span, mname, args, arg_spans))
}

/// `loop:` (a list, or a template that gives one), or a `with_*` lookup; and the loop variable.
fn loop_items_of(node: &Node, with: &Option<(&Node, String)>) -> SResult<(Option<(Json, Span)>, String)> {
        let l = node.get("loop");
        if let (Some(_), Some((k, w))) = (node.get("loop"), with) {
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
        let items = match with {
            Some((k, w)) => node.get(w).map(|n| (json!({ "__with": w.trim_start_matches("with_"), "terms": n.to_json() }), k.span.clone())),
            None => l.map(|n| (n.to_json(), n.span.clone())),
        };
        Ok((items, var))
}

/// `loop_control:`, each key checked.
fn loop_control(node: &Node) -> SResult<super::LoopControl> {
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
    Ok(loop_control)
}

/// `delegate_to` (`connection: local` and `local_action` are localhost's).
fn delegation(node: &Node, local: bool) -> SResult<Option<String>> {
    let mut delegate_to = opt_string(node, "delegate_to")?.or_else(|| (node.get("connection").and_then(Node::as_str) == Some("local")).then(|| "localhost".to_string()));
    if local {
        if delegate_to.is_some() {
            return Err(node.error("local_action runs on localhost: it takes no `delegate_to`"));
        }
        delegate_to = Some("localhost".into());
    }
    Ok(delegate_to)
}

/// `async` with `poll: 0`: a command or shell step started in the background.
fn poll_zero(node: &Node, mname: &str) -> SResult<bool> {
    Ok(match (opt_u64(node, "async")?, node.get("poll")) {
        (Some(_), Some(p)) if opt_u64(node, "poll")? == Some(0) => {
            // ansible-core's actions that refuse async fail where they run (see NO_ASYNC).
            if !matches!(mname, "command" | "shell") && !super::NO_ASYNC.contains(&mname) {
                return Err(p.error(format!("`async` with `poll: 0` on `{mname}` is not supported by recover (it starts `command` and `shell` steps in the background)")).help("give `poll:` a number of seconds above 0, or use command/shell"));
            }
            true
        }
        _ => false,
    })
}

/// What a task may not say: a destructive step that opts out of its backup, a destructive
/// command that names nothing to back up, a `register` that is not a name.
fn check_task(node: &Node, task: &Task, catalog: &dyn Catalog) -> SResult<()> {
    if let Some(b) = node.get("backup").filter(|b| !matches!(b.value, Value::Map(_))) {
        let opt_out = matches!(b.value, Value::Bool(false)) || b.as_str().is_some_and(|s| matches!(s, "no" | "false"));
        if opt_out && (task.declared.is_some() || catalog.destructive(task).is_some_and(|_| task.module != "command" && task.module != "shell")) {
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
    Ok(())
}

pub(super) fn declared(node: Option<&Node>) -> SResult<Option<super::Declared>> {
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

