//! What every loader shares: the load context (where a file is, which roles were loaded, how a
//! task list is loaded), the keywords a play, block or include hands its tasks, and the
//! keyword values no task may take.

use std::path::{Path, PathBuf};

use serde_json::Value as Json;

use super::fields::{conds, mapping, opt_bool, opt_string, opt_u64, strings};
use super::{Cond, Flag, Inherited, Item, Task};
use crate::error::{SResult, Span};
use crate::template::Vars;
use crate::yaml::{Node, Value};

/// The keywords a block takes besides `block`, `rescue` and `always`.
pub(super) const BLOCK_KEYS: &[&str] = &[
    "name", "when", "tags", "vars", "become", "become_user", "become_method", "become_flags", "become_exe", "ignore_errors",
    "no_log", "environment", "remote_user", "delegate_to", "run_once", "check_mode", "timeout", "any_errors_fatal", "module_defaults",
    "ignore_unreachable", "diff", "collections", "throttle", "port", "connection", "notify",
];

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
    /// How a task list is loaded (`block::item_list`): roles and includes load the task lists
    /// they hold through it, so no loader of theirs imports the one that loads them.
    pub items: ItemsLoader,
    /// The modules a task may name.
    pub catalog: &'static dyn super::Catalog,
    /// The collections the play or role names (`collections:`), searched for a short module name.
    pub collections: Vec<String>,
    /// The roles loaded as another role's dependency (`ansible_dependent_role_names`).
    pub dependents: std::rc::Rc<std::cell::RefCell<Vec<String>>>,
    /// The roles whose `import_role`/`include_role` brought these tasks in, innermost first
    /// (`ansible_parent_role_names`, `ansible_parent_role_paths`): empty for a play's roles.
    pub parents: Vec<PathBuf>,
}

impl LoadCtx {
    /// The parents of a role that a task loaded with this context imports or includes: this
    /// context's role, then its parents.
    pub fn parents_of_child(&self) -> Vec<PathBuf> {
        self.role_dir.iter().cloned().chain(self.parents.iter().cloned()).collect()
    }
}

/// Loads a task list (see [`LoadCtx::items`]).
pub(crate) type ItemsLoader = fn(Option<&Node>, &Path, &LoadCtx, usize) -> SResult<Vec<Item>>;

/// The keywords `node` (a block, a role entry, `apply:`) passes down to its tasks.
pub(super) fn inherited(node: &Node) -> SResult<Inherited> {
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
        notify: strings(node.get("notify"))?,
    })
}

/// The folder of a file: `.` for a bare name (whose parent is the empty path).
pub(super) fn dir_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// `module_defaults:` of a play, block or task: a mapping of module names to default
/// arguments (or a list of such mappings). A `group/...` name is a collection's action group:
/// recover runs no collection's modules, so it applies to none of its tasks (said at load).
pub(super) fn module_defaults(node: &Node) -> SResult<Vec<(Json, Span)>> {
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
pub(super) fn flag(node: &Node, key: &str) -> SResult<Option<Flag>> {
    match node.get(key) {
        None => Ok(None),
        Some(v) => match &v.value {
            Value::Str(s) if crate::template::is_template(s) => Ok(Some(Flag::Expr(Cond { expr: s.clone(), span: v.span.clone() }))),
            _ => Ok(opt_bool(node, key)?.map(Flag::Fixed)),
        },
    }
}

/// Values of supported keywords recover does not implement (a `strategy` other than linear).
pub(super) fn refuse_unsupported_values(node: &Node) -> SResult<()> {
    if let Some(s) = node.get("strategy") {
        if s.as_str() != Some("linear") {
            // `free` and `host_pinned` run each host through the play at its own pace;
            // `debug` is not implemented.
            // (A template is rendered when the play starts, with its vars and the extra vars.)
            if !matches!(s.as_str(), Some("free" | "host_pinned")) && !s.as_str().is_some_and(crate::template::is_template) {
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
        strings(Some(c))?;
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
pub(super) fn become_kw(node: &Node) -> SResult<crate::playbook::BecomeKw> {
    Ok(crate::playbook::BecomeKw { method: opt_string(node, "become_method")?, flags: opt_string(node, "become_flags")?, exe: opt_string(node, "become_exe")? })
}
