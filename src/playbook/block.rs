//! Task lists and blocks: what a list entry is (a task, a block, an import or an include), a
//! block's `rescue:` and `always:`, and the keywords a block hands its tasks.

use std::path::{Path, PathBuf};


use super::{Block, Item};
use super::fields::{closest, opt_string};
use super::include::{load_include_role, load_include_tasks};
use super::keywords::{dir_of, inherited, refuse_unsupported_values, LoadCtx, BLOCK_KEYS};
use super::task::load_task;
use crate::error::SResult;
use crate::yaml::{self, Node, Value};

/// The task lists of a tasks file (for an include resolved at run time).
pub(crate) fn load_tasks_file(path: &Path, ctx: &LoadCtx) -> SResult<Vec<Item>> {
    let node = yaml::load_file(path)?;
    item_list(Some(&node), dir_of(path), ctx, 1)
}

pub(super) fn item_list(node: Option<&Node>, dir: &Path, ctx: &LoadCtx, depth: usize) -> SResult<Vec<Item>> {
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
pub(super) fn keyword<'a>(node: &'a Node, names: &[&str]) -> Option<(String, &'a Node, &'a Node)> {
    for (k, v) in node.as_map().unwrap_or_default() {
        let key = k.scalar_string().unwrap_or_default();
        let short = key.strip_prefix("ansible.builtin.").or_else(|| key.strip_prefix("ansible.legacy.")).unwrap_or(&key);
        if names.contains(&short) {
            return Some((short.to_string(), k, v));
        }
    }
    None
}

pub(super) fn load_item(item: &Node, dir: &Path, ctx: &LoadCtx, depth: usize, out: &mut Vec<Item>) -> SResult<()> {
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

pub(super) fn load_block(item: &Node, dir: &Path, ctx: &LoadCtx, depth: usize, out: &mut Vec<Item>) -> SResult<()> {
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

/// A load context whose task lists are loaded by [`item_list`]: for a play, and for what a
/// host includes at run time.
pub(crate) fn load_ctx(role_dir: Option<PathBuf>, playbook_dir: PathBuf, project_root: PathBuf, catalog: &'static dyn super::Catalog) -> LoadCtx {
    LoadCtx { role_dir, playbook_dir, project_root, seen: Default::default(), imported_handlers: Default::default(), imported_vars: Default::default(), items: item_list, catalog, collections: Vec::new(), dependents: Default::default(), parents: Vec::new() }
}
