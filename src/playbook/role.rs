//! Loading roles as ansible-core finds and runs them: `roles:`, `import_role` and
//! `include_role`; their dependencies (once per play), defaults, vars, tasks and handlers, and
//! the argument check a role's `meta/argument_specs.yml` asks for.

use std::path::{Path, PathBuf};

use serde_json::Value as Json;

use super::{IncludeKind, Inherited, Item, Task};
use super::keywords::{inherited, LoadCtx, BLOCK_KEYS};
use super::fields::{mapping};
use super::keywords::refuse_unsupported_values;
use super::kv::is_identifier;
use crate::error::{SResult, SourceError, Span};
use crate::template::Vars;
use crate::yaml::{self, Node, Value};

/// A `roles:` entry, `import_role` or `include_role`: what to load.
pub(super) struct RoleEntry {
    pub name: String,
    pub vars: Vars,
    pub inherit: Inherited,
    pub tasks_from: Option<String>,
    pub vars_from: Option<String>,
    pub defaults_from: Option<String>,
    pub handlers_from: Option<String>,
}

pub(super) fn role_entry(r: &Node) -> SResult<RoleEntry> {
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
pub(super) struct LoadedRole {
    pub defaults: Vars,
    pub tasks: Vec<Item>,
    pub handlers: Vec<Task>,
    /// Its `vars/` (and its dependencies'), without its parameters: what it exposes.
    pub exported_vars: Vars,
}

pub(super) fn load_role(entry: &RoleEntry, at: &Node, ctx: &LoadCtx, dedupe: bool, depth: usize) -> SResult<LoadedRole> {
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
                let dep_name = dep.name.rsplit('/').next().unwrap_or(&dep.name).to_string();
                if !ctx.dependents.borrow().contains(&dep_name) {
                    ctx.dependents.borrow_mut().push(dep_name);
                }
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
    crate::pyansible::note_dir(&role_dir);
    // A role searches the collections its meta names, then its play's.
    let mut collections = super::fields::strings(meta.as_ref().and_then(|m| m.get("collections")))?;
    collections.extend(ctx.collections.iter().filter(|c| !collections.contains(c)).cloned().collect::<Vec<_>>());
    let rctx = LoadCtx { role_dir: Some(role_dir.clone()), playbook_dir: ctx.playbook_dir.clone(), project_root: ctx.project_root.clone(), seen: ctx.seen.clone(), imported_handlers: ctx.imported_handlers.clone(), imported_vars: ctx.imported_vars.clone(), items: ctx.items, catalog: ctx.catalog, collections, dependents: ctx.dependents.clone(), parents: ctx.parents.clone() };
    let mut inherit = entry.inherit.clone();
    // Brought in by another role: ansible-core's include parameters naming the parents.
    inherit.vars.extend(role_vars);
    let mut tasks = Vec::new();
    // ansible-core's first step of a role with an argument spec for its entry point.
    if let Some(t) = argument_spec_task(&role_dir, entry, meta.as_ref())? {
        tasks.push(Item::Task(Box::new(t)));
    }
    if let Some(p) = role_file(&role_dir, "tasks", entry.tasks_from.as_deref(), at)? {
        let tasks_node = yaml::load_file(&p)?;
        tasks.extend((rctx.items)(Some(&tasks_node), p.parent().unwrap_or(&role_dir), &rctx, depth)?);
    }
    inherit.push_into(&mut tasks);
    out.tasks.extend(tasks);
    if let Some(p) = role_file(&role_dir, "handlers", entry.handlers_from.as_deref(), at)? {
        let node = yaml::load_file(&p)?;
        let mut hs = flat_handlers((rctx.items)(Some(&node), &role_dir.join("handlers"), &rctx, depth)?, &node, &rctx)?;
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

/// `ansible_parent_role_names` and `ansible_parent_role_paths` of a role brought in by others'
/// `import_role`/`include_role` (innermost first); none for a play's role.
pub(super) fn parent_vars(parents: &[PathBuf]) -> Vars {
    let mut v = Vars::new();
    if !parents.is_empty() {
        // (Include parameters: the nearest import_role/include_role's win; see flow's load_include.)
        let names: Vec<String> = parents.iter().map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()).collect();
        let paths: Vec<String> = parents.iter().map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone()).display().to_string()).collect();
        v.insert("ansible_parent_role_names".into(), serde_json::json!(names));
        v.insert("ansible_parent_role_paths".into(), serde_json::json!(paths));
    }
    v
}

/// The step ansible-core puts first in a role whose `meta/argument_specs.yml` (else
/// `meta/main.yml`'s `argument_specs`) has a spec for the entry point (`main`, or `tasks_from`):
/// `validate_argument_spec` of the role's parameters and variables, tagged `always`.
pub(super) fn argument_spec_task(role_dir: &Path, entry: &RoleEntry, meta: Option<&Node>) -> SResult<Option<Task>> {
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
pub(super) fn role_file(role_dir: &Path, part: &str, from: Option<&str>, at: &Node) -> SResult<Option<PathBuf>> {
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
pub(super) fn flat_handlers(items: Vec<Item>, at: &Node, ctx: &LoadCtx) -> SResult<Vec<Task>> {
    let mut out = Vec::new();
    for i in items {
        match i {
            Item::Task(t) => out.push(*t),
            Item::Block(b) => {
                if !b.rescue.is_empty() || !b.always.is_empty() {
                    return Err(SourceError::new(b.span.clone(), "`rescue`/`always` in handlers are not supported by recover"));
                }
                out.extend(flat_handlers(b.block, at, ctx)?);
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
                    let mut tasks = flat_handlers(p, at, ctx)?;
                    let h = std::sync::Arc::new(super::HandlerInclude { names, file: file.clone(), when: inc.when.clone(), span: inc.span.clone() });
                    for t in tasks.iter_mut() {
                        for (k, v) in &inc.vars {
                            t.vars.entry(k.clone()).or_insert_with(|| v.clone());
                        }
                        t.handler_of = Some(h.clone());
                    }
                    out.extend(tasks);
                }
                // ansible-core loads these and runs them when notified; recover loads them too and
                // refuses the handler, by name, when a host is to run it.
                _ => out.extend(refused_handler(&inc, ctx)?),
            },
        }
    }
    Ok(out)
}

/// A handler recover cannot run (an include_role, a loop over an include, a templated or
/// unloadable file): a handler of the same name and listen topics that fails, saying why,
/// when it is notified and its `when` holds. One without a name is never notified.
fn refused_handler(inc: &super::Include, ctx: &LoadCtx) -> SResult<Option<Task>> {
    let Some(name) = inc.name.clone().or_else(|| inc.listen.first().cloned()) else { return Ok(None) };
    let what = match (&inc.kind, inc.loop_items.is_some(), inc.preloaded.is_some()) {
        (IncludeKind::Tasks { .. }, true, _) => "a loop over an include_tasks",
        (IncludeKind::Tasks { .. }, false, false) => "an include_tasks whose file is a template or cannot be loaded",
        _ => "an include_role",
    };
    let msg = format!("handler '{name}' ({}) is {what}, which recover does not run as a handler", inc.span);
    let text = format!("name: {}\nlisten: {}\nfail:\n  msg: {}\n", Json::String(name), Json::from(inc.listen.clone()), Json::String(msg));
    let file = inc.span.file.as_deref().cloned().unwrap_or_default();
    let node = yaml::parse_str(&text, &file)?;
    let mut t = super::task::load_task(&node, ctx)?;
    t.span = inc.span.clone();
    t.when = inc.when.clone();
    Ok(Some(t))
}

/// A role beside the playbook, in the project, then along the search path (see `assets`).
pub(super) fn find_role(name: &str, dir: &Path, root: &Path) -> Option<PathBuf> {
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

pub(super) fn yaml_in(dir: &Path) -> Option<PathBuf> {
    let c = ["main.yml", "main.yaml", "main"].map(|f| dir.join(f));
    // Looked for: a saved plan notices a `main.yml` added here later.
    for p in &c {
        crate::inputs::note(p);
    }
    c.into_iter().find(|p| p.is_file())
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
    // (`ctx` is the including task's: the role's parents are its role and that role's.)
    let own = LoadCtx { parents: ctx.parents_of_child(), ..own };
    let mut r = load_role(&entry, &node, &own, false, 0)?;
    r.handlers.extend(own.imported_handlers.borrow_mut().drain(..));
    Ok((r.defaults, r.tasks, r.handlers, r.exported_vars))
}
