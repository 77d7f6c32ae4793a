//! `meta:` (the executor runs it: see `executor::flow`) and `include_vars`.

use async_trait::async_trait;
use documented::Documented;
use serde_json::{json, Value as Json};

use crate::error::{SResult, SourceError};
use crate::modules::{opt, ArgSpec, Kind, Module, Plan, StepCtx, StepError};
use crate::playbook::Task;

/// The `meta:` actions recover runs.
pub const META_ACTIONS: &[&str] = &["flush_handlers", "end_host", "end_play", "end_batch", "clear_facts", "clear_host_errors", "noop", "refresh_inventory", "reset_connection", "end_role"];

/// `meta`: run-control actions the executor carries out: `flush_handlers`, `end_host`, `end_play`,
/// `end_batch`, `end_role`, `clear_facts`, `clear_host_errors`, `noop`, `refresh_inventory`,
/// `reset_connection`.
///
/// Returns: nothing to register.
///
/// Check mode: acts as in a real run.
#[derive(Documented)]
pub struct Meta;

#[async_trait]
impl Module for Meta {
    fn name(&self) -> &'static str {
        "meta"
    }
    fn doc(&self) -> &'static str {
        Self::DOCS
    }
    fn spec(&self) -> &'static [ArgSpec] {
        &[]
    }
    fn free_form(&self) -> bool {
        true
    }
    fn validate(&self, task: &Task) -> SResult<()> {
        let action = task.args.get("_raw_params").and_then(Json::as_str).unwrap_or_default().trim();
        if action == "end_role" {
            return Err(SourceError::new(task.module_span.clone(), "meta: end_role is not supported by recover yet"));
        }
        if !META_ACTIONS.contains(&action) {
            return Err(SourceError::new(task.module_span.clone(), format!("meta: unknown action '{action}'")).help(format!("actions: {}", META_ACTIONS.join(", "))));
        }
        if task.loop_items.is_some() {
            return Err(SourceError::new(task.span.clone(), "meta tasks take no loop"));
        }
        Ok(())
    }
    async fn plan(&self, _ctx: &StepCtx<'_>, _args: &Json) -> Result<Plan, StepError> {
        Ok(Plan::done(json!({})))
    }
}

const INCLUDE_VARS_SPEC: &[ArgSpec] = &[
    opt("file", Kind::Str).doc("The YAML (or JSON) file of variables, beside the role's `vars/` or the playbook."),
    opt("dir", Kind::Str).doc("A folder whose variable files are all read, in name order."),
    opt("name", Kind::Str).doc("Put the variables under this one name instead of at the top."),
    opt("depth", Kind::Int).default("0").doc("How deep into `dir` to look (0: no limit)."),
    opt("files_matching", Kind::Str).doc("Only files in `dir` whose names match this regular expression."),
    opt("ignore_files", Kind::List).doc("File names in `dir` to skip."),
    opt("extensions", Kind::List).default("[yaml, yml, json]").doc("File extensions read from `dir`."),
    opt("ignore_unknown_extensions", Kind::Bool).default("false").doc("Skip files in `dir` with other extensions instead of failing."),
    opt("hash_behaviour", Kind::Str).doc("`replace` or `merge` dictionaries already defined."),
];

/// `include_vars`: variables from YAML or JSON files on this machine (a file, or a folder of them),
/// for the rest of the host's run.
///
/// Returns: `ansible_facts` (the variables), `ansible_included_var_files`.
///
/// Check mode: reads them as in a real run.
#[derive(Documented)]
pub struct IncludeVars;

#[async_trait]
impl Module for IncludeVars {
    fn name(&self) -> &'static str {
        "include_vars"
    }
    fn doc(&self) -> &'static str {
        Self::DOCS
    }
    fn spec(&self) -> &'static [ArgSpec] {
        INCLUDE_VARS_SPEC
    }
    fn free_form(&self) -> bool {
        true
    }
    fn validate(&self, task: &Task) -> SResult<()> {
        let has = |k: &str| task.args.get(k).is_some();
        if !has("_raw_params") && !has("file") && !has("dir") {
            return Err(SourceError::new(task.module_span.clone(), "include_vars needs a file (`include_vars: FILE` or `file:`) or `dir:`"));
        }
        if let Some(h) = task.args.get("hash_behaviour").and_then(Json::as_str) {
            if !matches!(h, "replace" | "merge") && !crate::template::is_template(h) {
                return Err(SourceError::new(task.arg_span("hash_behaviour"), format!("include_vars: hash_behaviour must be replace or merge, not '{h}'")));
            }
        }
        Ok(())
    }
    async fn plan(&self, ctx: &StepCtx<'_>, args: &Json) -> Result<Plan, StepError> {
        let s = |k: &str| args.get(k).and_then(Json::as_str).map(str::to_string);
        let mut files = Vec::new();
        if let Some(dir) = s("dir") {
            let d = search(ctx, &dir, true).ok_or_else(|| StepError::failed(format!("include_vars: no such folder {dir}")))?;
            let exts: Vec<String> = match args.get("extensions") {
                Some(Json::Array(a)) => a.iter().filter_map(Json::as_str).map(str::to_string).collect(),
                _ => vec!["yaml".into(), "yml".into(), "json".into()],
            };
            let ignore: Vec<String> = match args.get("ignore_files") {
                Some(Json::Array(a)) => a.iter().filter_map(Json::as_str).map(str::to_string).collect(),
                _ => Vec::new(),
            };
            let matching = match s("files_matching") {
                Some(p) => Some(regex::Regex::new(&p).map_err(|e| StepError::failed(format!("include_vars: files_matching: {e}")))?),
                None => None,
            };
            let depth = args.get("depth").and_then(Json::as_u64).unwrap_or(0) as usize;
            let mut found = Vec::new();
            walk(&d, 1, depth, &mut found);
            found.sort();
            for p in found {
                let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                let ext = p.extension().map(|e| e.to_string_lossy().into_owned()).unwrap_or_default();
                if ignore.contains(&name) || matching.as_ref().is_some_and(|m| !m.is_match(&name)) {
                    continue;
                }
                if !exts.contains(&ext) {
                    if args.get("ignore_unknown_extensions").and_then(Json::as_bool) == Some(true) {
                        continue;
                    }
                    return Err(StepError::failed(format!("include_vars: {} does not have a valid extension: {}", p.display(), exts.join(", "))));
                }
                files.push(p);
            }
        } else {
            let f = s("file").or_else(|| s("_raw_params")).unwrap_or_default();
            let p = search(ctx, &f, false).ok_or_else(|| StepError::failed(format!("include_vars: could not find or access '{f}' (looked in the role's vars/, the playbook's vars/ and folder)")))?;
            files.push(p);
        }
        let mut vars = serde_json::Map::new();
        for p in &files {
            let node = crate::yaml::load_file(p).map_err(|e| StepError::failed(format!("include_vars: {e}")))?;
            match node.to_json() {
                Json::Object(m) => vars.extend(m),
                Json::Null => {}
                other => return Err(StepError::failed(format!("include_vars: {} must hold a mapping of names to values, found {}", p.display(), kind(&other)))),
            }
        }
        let mut facts = match s("name") {
            Some(n) => json!({ n: Json::Object(vars) }),
            None => Json::Object(vars),
        };
        // `hash_behaviour: merge`: a mapping the task already sees is merged into, recursively
        // (ansible-core's combine_vars with merge), not replaced.
        if s("hash_behaviour").as_deref() == Some("merge") {
            if let Json::Object(new) = &mut facts {
                for (k, v) in new.iter_mut() {
                    if let Ok(old) = ctx.vars.get_attr(k).map_err(|_| ()).and_then(|o| crate::template::json_of(&o).map_err(|_| ())) {
                        *v = merge_hashes(old, std::mem::take(v));
                    }
                }
            }
        }
        Ok(Plan::done(json!({ "ansible_facts": facts, "ansible_included_var_files": files.iter().map(|p| p.display().to_string()).collect::<Vec<_>>() })))
    }
}

/// Recursive merge of mappings (`b` wins where both hold a non-mapping), as ansible-core's
/// merge_hash.
fn merge_hashes(a: Json, b: Json) -> Json {
    match (a, b) {
        (Json::Object(mut a), Json::Object(b)) => {
            for (k, v) in b {
                let merged = match a.remove(&k) {
                    Some(old) => merge_hashes(old, v),
                    None => v,
                };
                a.insert(k, merged);
            }
            Json::Object(a)
        }
        (_, b) => b,
    }
}

fn kind(v: &Json) -> &'static str {
    match v {
        Json::Array(_) => "a list",
        Json::String(_) => "text",
        _ => "a scalar",
    }
}

fn walk(dir: &std::path::Path, level: usize, depth: usize, out: &mut Vec<std::path::PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    let mut entries: Vec<_> = rd.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            if depth == 0 || level < depth {
                walk(&p, level + 1, depth, out);
            }
        } else {
            out.push(p);
        }
    }
}

/// Ansible's search for a relative `include_vars` path: the role's `vars/`, the role, then the
/// playbook's `vars/` and folder.
fn search(ctx: &StepCtx<'_>, name: &str, dir: bool) -> Option<std::path::PathBuf> {
    let p = std::path::Path::new(name);
    let ok = |p: &std::path::Path| if dir { p.is_dir() } else { p.is_file() };
    if p.is_absolute() {
        return ok(p).then(|| p.to_path_buf());
    }
    let mut c = Vec::new();
    if let Some(r) = &ctx.task.role_dir {
        c.extend([r.join("vars").join(name), r.join(name)]);
    }
    c.extend([ctx.playbook_dir.join("vars").join(name), ctx.playbook_dir.join(name)]);
    c.into_iter().find(|p| ok(p))
}
