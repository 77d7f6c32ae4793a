//! `import_tasks`/`include_tasks` and `import_role`/`include_role`: static imports resolved
//! at load, dynamic includes kept to be resolved per host when it reaches them.

use std::path::{Path, PathBuf};

use serde_json::Value as Json;

use super::fields::{conds, mapping, opt_string, strings};
use super::keywords::{flag, inherited, LoadCtx, BLOCK_KEYS};
use super::role::{RoleEntry, load_role, load_role_dynamic};
use super::kv::{kv_word, split_kv};
use super::task::loop_of;
use super::{walk_mut, Cond, Inherited, Item, Task};
use crate::error::SResult;
use crate::error::Span;
use crate::template::Vars;
use crate::yaml::{self, Node, Value};

/// The keys an include or import takes besides its own.
pub(super) const INCLUDE_KEYS: &[&str] = &["name", "listen", "when", "tags", "vars", "loop", "with_items", "loop_control", "apply", "become", "become_user", "become_method", "become_flags", "become_exe", "ignore_errors", "no_log", "environment", "delegate_to", "run_once", "any_errors_fatal", "timeout", "check_mode", "diff", "args", "remote_user"];

/// ansible-core's keywords of a dynamic include (`include_tasks`, `include_role`): they are the
/// include's own (its `when`, whether its failure to load is ignored); `apply:` gives keywords
/// to its tasks. Any other is "not a valid attribute" for it, as ansible-core says at load.
pub(super) const DYNAMIC_INCLUDE_KEYS: &[&str] = &["name", "listen", "when", "tags", "vars", "loop", "with_items", "loop_control", "ignore_errors", "no_log", "register", "run_once", "timeout", "args", "collections"];

pub(super) fn load_include_tasks(item: &Node, kw: &str, file: &Node, dir: &Path, ctx: &LoadCtx, depth: usize, out: &mut Vec<Item>) -> SResult<()> {
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
        let with = super::task::WITH_LOOPS.contains(&key.as_str());
        if dynamic && with {
            continue;
        }
        if !INCLUDE_KEYS.contains(&key.as_str()) || key == "apply" || (!dynamic && (with || matches!(key.as_str(), "loop" | "loop_control"))) {
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
            if let Ok(mut items) = (ctx.items)(Some(&inner), p.parent().unwrap_or(dir), ctx, depth + 1) {
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
    let mut items = (ctx.items)(Some(&inner), p.parent().unwrap_or(dir), ctx, depth + 1)?;
    // An import is its tasks: its keywords are theirs, as a block's.
    let inherit = inherited(item)?;
    inherit.push_into(&mut items);
    out.extend(items);
    Ok(())
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
pub(super) fn kv_spec(spec: &Node) -> Option<Node> {
    let Value::Str(s) = &spec.value else { return None };
    let words = split_kv(s).ok()?;
    let pairs: Vec<(String, String)> = words.iter().map(|w| kv_word(w)).collect::<Option<_>>()?;
    if pairs.is_empty() {
        return None;
    }
    let node = |v: Value| Node { span: spec.span.clone(), value: v };
    Some(node(Value::Map(pairs.into_iter().map(|(k, v)| (node(Value::Str(k)), node(Value::Str(v)))).collect())))
}

pub(super) fn load_include_role(item: &Node, kw: &str, spec: &Node, ctx: &LoadCtx, depth: usize, out: &mut Vec<Item>) -> SResult<()> {
    let dynamic = kw == "include_role";
    let kv = kv_spec(spec);
    let spec = kv.as_ref().unwrap_or(spec);
    let spec = if matches!(spec.value, Value::Map(_)) { spec } else { item.get("args").unwrap_or(spec) };
    let (name, from, public) = role_spec(spec, kw, dynamic)?;
    check_role_include_keys(item, kw, dynamic)?;
    let templated = crate::template::is_template(&name) || from.iter().flatten().any(|f| crate::template::is_template(f));
    if !dynamic {
        if templated {
            return Err(spec.error("import_role is static: its names cannot be templates").help("use include_role"));
        }
        return import_role(item, spec, name, from, public, ctx, depth, out);
    }
    include_role(item, spec, name, from, public, templated, ctx, out)
}

/// `name` (or `role`), `tasks_from`, `vars_from`, `defaults_from`, `handlers_from`, `public`.
fn role_spec(spec: &Node, kw: &str, dynamic: bool) -> SResult<(String, [Option<String>; 4], bool)> {
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
    Ok((name, from, public))
}

/// The keywords an import or include of a role takes (ansible-core 2.19's).
fn check_role_include_keys(item: &Node, kw: &str, dynamic: bool) -> SResult<()> {
    for (k, _) in item.as_map().unwrap_or_default() {
        let key = k.scalar_string().unwrap_or_default();
        if key.ends_with(kw) || key == "args" {
            continue;
        }
        if dynamic && INCLUDE_KEYS.contains(&key.as_str()) && !DYNAMIC_INCLUDE_KEYS.contains(&key.as_str()) {
            return Err(k.error(format!("'{key}' is not a valid attribute for {kw} (as in ansible-core)")).help("give it to the included role's tasks with `apply:`"));
        }
        let with = super::task::WITH_LOOPS.contains(&key.as_str());
        if dynamic && with {
            continue;
        }
        if !INCLUDE_KEYS.contains(&key.as_str()) || (!dynamic && (with || matches!(key.as_str(), "loop" | "loop_control"))) {
            return Err(k.error(format!("`{key}` on {kw} is not supported")));
        }
    }
    Ok(())
}

/// `import_role`: the role's tasks in place, at load; its handlers join the play's, its
/// defaults and vars are the play's (unless `public: false`).
#[allow(clippy::too_many_arguments)]
fn import_role(item: &Node, spec: &Node, name: String, from: [Option<String>; 4], public: bool, ctx: &LoadCtx, depth: usize, out: &mut Vec<Item>) -> SResult<()> {
    let mut inherit = inherited(item)?;
    let vars = std::mem::take(&mut inherit.vars);
    let entry = RoleEntry { name, vars, inherit, tasks_from: from[0].clone(), vars_from: from[1].clone(), defaults_from: from[2].clone(), handlers_from: from[3].clone() };
    let ctx = &LoadCtx { parents: ctx.parents_of_child(), ..ctx.clone() };
    let loaded = load_role(&entry, spec, ctx, false, depth + 1)?;
    // Its defaults are the role's tasks' own (the play's are set already).
    let defaults = std::sync::Arc::new(loaded.defaults);
    let mut tasks = loaded.tasks;
    // ansible-core's include parameters naming the parents, as an include_role's (a nearer
    // import inside keeps its own).
    let parents = super::role::parent_vars(&ctx.parents);
    walk_mut(
        &mut tasks,
        &mut |t| {
            if t.defaults.is_none() {
                t.defaults = Some(defaults.clone());
            }
            for (k, v) in &parents {
                t.vars.entry(k.clone()).or_insert_with(|| v.clone());
            }
        },
        &mut |i| {
            for (k, v) in &parents {
                i.vars.entry(k.clone()).or_insert_with(|| v.clone());
            }
        },
    );
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
    Ok(())
}

/// `include_role`: kept as an include, resolved per host when it reaches it (preloaded when its
/// names are not templates, so its tasks are checked at load).
#[allow(clippy::too_many_arguments)]
fn include_role(item: &Node, spec: &Node, name: String, from: [Option<String>; 4], public: bool, templated: bool, ctx: &LoadCtx, out: &mut Vec<Item>) -> SResult<()> {
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
    // Inside a role: ansible-core's include parameters naming the parents (see load_role).
    for (k, v) in super::role::parent_vars(&ctx.parents_of_child()) {
        inc.vars.entry(k).or_insert(v);
    }
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
pub(super) fn include_of(item: &Node, kind: IncludeKind, apply: Inherited, dir: &Path, ctx: &LoadCtx) -> SResult<Include> {
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
        index_var: item.get("loop_control").and_then(|lc| lc.get("index_var")).and_then(Node::scalar_string),
        loop_var,
        inherit,
        dir: dir.to_path_buf(),
        role_dir: ctx.role_dir.clone(),
        parents: ctx.parents.clone(),
        preloaded: None,
        handlers: Vec::new(),
        public: false,
        exports: None,
        listen: strings(item.get("listen"))?,
        ignore_errors: matches!(flag(item, "ignore_errors")?, Some(super::Flag::Fixed(true))),
    })
}

/// What an include brings in.
#[derive(Clone, Debug)]
pub enum IncludeKind {
    /// `include_tasks: FILE` (a template: rendered per host).
    Tasks { file: String },
    /// `include_role: {name, tasks_from, vars_from, defaults_from, handlers_from}`.
    Role { name: String, tasks_from: Option<String>, vars_from: Option<String>, defaults_from: Option<String> },
}

/// A dynamic include: its own `when` and `loop` are evaluated once (per item), its tags select
/// it, and `apply:` (plus the keywords of the blocks around it) goes to every task it brings in.
#[derive(Clone, Debug)]
pub struct Include {
    pub kind: IncludeKind,
    pub name: Option<String>,
    pub span: Span,
    pub when: Vec<Cond>,
    pub tags: Vec<String>,
    pub vars: Vars,
    pub loop_items: Option<(Json, Span)>,
    pub loop_var: String,
    /// `loop_control.index_var`: the item's index, seen by the tasks it brings in.
    pub index_var: Option<String>,
    /// Applied to the tasks it brings in.
    pub inherit: Inherited,
    /// The folder its file is looked up from first (the including file's).
    pub dir: PathBuf,
    pub role_dir: Option<PathBuf>,
    /// The roles that brought this include in (see `LoadCtx::parents`).
    pub parents: Vec<PathBuf>,
    /// A file name without templates is loaded (and checked) at load time.
    pub preloaded: Option<Vec<Item>>,
    /// An `include_role`'s handlers, loaded with its tasks: they join the host's handlers
    /// when the include runs, as in ansible-core.
    pub handlers: Vec<Task>,
    /// The include's own `ignore_errors`: a file or role it cannot load does not stop the host.
    pub ignore_errors: bool,
    /// A handler's `listen` topics (an include_tasks in `handlers:`).
    pub listen: Vec<String>,
    /// `include_role` with `public: true`: the role's defaults and vars stay visible to the
    /// host's later tasks.
    pub public: bool,
    /// A preloaded role's defaults and vars (what `public` exposes).
    pub exports: Option<(Vars, Vars)>,
}
