//! `file`: a directory, an empty file (`touch`), a symlink, or nothing
//! (`absent`), with mode, owner and group.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Value as Json};

use super::{de, opt, req, typed, ArgSpec, Kind, Module, Plan, StepCtx, StepError};
use crate::facts::{self, FileKind};
use crate::transport::{quote, Cmd};

pub struct File;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(alias = "dest", alias = "name")]
    path: String,
    #[serde(default)]
    state: Option<String>,
    #[serde(default, deserialize_with = "de::mode")]
    mode: Option<u32>,
    owner: Option<String>,
    group: Option<String>,
    src: Option<String>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    recurse: Option<bool>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    force: Option<bool>,
}

/// ansible-core's file diff: `{"path", "state"}` before and after when the state changes
/// (a removed folder also lists what was in it, as os.walk finds it), `mode` when it changes;
/// shown as JSON (sorted keys, indent 4).
fn state_diff(path: &str, prev: &str, new: &str, mode: Option<(u32, u32)>, content: Option<Json>) -> Option<super::FileDiff> {
    let mut before = std::collections::BTreeMap::new();
    let mut after = std::collections::BTreeMap::new();
    before.insert("path", json!(path));
    after.insert("path", json!(path));
    if prev != new {
        before.insert("state", json!(prev));
        after.insert("state", json!(new));
        if let Some(c) = content {
            before.insert("path_content", c);
        }
    }
    if let Some((b, a)) = mode.filter(|(b, a)| b != a) {
        before.insert("mode", json!(format!("0{b:03o}")));
        after.insert("mode", json!(format!("0{a:03o}")));
    }
    if before == after {
        return None;
    }
    let text = |m: &std::collections::BTreeMap<&str, Json>| crate::template::pyjson::dumps(&json!(m), Some(4), true, true).into_bytes();
    Some(super::FileDiff { path: path.to_string(), before: Some(text(&before)), after: Some(text(&after)), mode: None })
}

/// What os.walk lists under a folder: its folders and its files, each folder's entries
/// (folders, then files) before those of the folders inside it.
async fn walk_list(ctx: &StepCtx<'_>, path: &str) -> Result<Json, StepError> {
    let out = ctx.run(Cmd::shell(format!("find {} -mindepth 1 -printf '%y\\t%h\\t%p\\0' 2>/dev/null; true", quote::quote(path)))).await?;
    let mut by_parent: std::collections::HashMap<String, Vec<(bool, String)>> = std::collections::HashMap::new();
    for rec in out.stdout.split(|b| *b == 0).filter(|r| !r.is_empty()) {
        let rec = String::from_utf8_lossy(rec).into_owned();
        let f: Vec<&str> = rec.splitn(3, '\t').collect();
        if f.len() == 3 {
            by_parent.entry(f[1].to_string()).or_default().push((f[0] == "d", f[2].to_string()));
        }
    }
    let (mut dirs, mut files) = (Vec::new(), Vec::new());
    let mut stack = vec![path.trim_end_matches('/').to_string()];
    while let Some(d) = stack.pop() {
        let list = by_parent.remove(&d).unwrap_or_default();
        let sub: Vec<String> = list.iter().filter(|(is_dir, _)| *is_dir).map(|(_, p)| p.clone()).collect();
        dirs.extend(sub.iter().cloned());
        files.extend(list.iter().filter(|(is_dir, _)| !*is_dir).map(|(_, p)| p.clone()));
        stack.extend(sub.into_iter().rev());
    }
    Ok(json!({"directories": dirs, "files": files}))
}

#[async_trait]
impl Module for File {
    fn name(&self) -> &'static str {
        "file"
    }
    fn spec(&self) -> &'static [ArgSpec] {
        const S: &[ArgSpec] = &[
            req("path", Kind::Str), opt("dest", Kind::Str), opt("name", Kind::Str), opt("state", Kind::Str), opt("mode", Kind::Any),
            opt("owner", Kind::Str), opt("group", Kind::Str), opt("src", Kind::Str), opt("recurse", Kind::Bool), opt("force", Kind::Bool),
        ];
        S
    }
    fn validate(&self, task: &crate::playbook::Task) -> crate::error::SResult<()> {
        if let Json::Object(a) = &task.args {
            if let Some(Json::String(s)) = a.get("state") {
                if !crate::template::is_template(s) && !["file", "directory", "absent", "touch", "link"].contains(&s.as_str()) {
                    return Err(crate::error::SourceError::new(task.arg_span("state"), format!("file: state must be file, directory, absent, touch or link, not '{s}'")));
                }
            }
        }
        Ok(())
    }
    async fn plan(&self, ctx: &StepCtx<'_>, args: &Json) -> Result<Plan, StepError> {
        let a: Args = typed("file", args)?;
        // Mode, owner and group need `stat`; what kind of thing the path is needs only the shell.
        let (st, kind) = if a.mode.is_some() || a.owner.is_some() || a.group.is_some() {
            let st = facts::parse_stat(&ctx.run(facts::stat_cmd(&a.path)).await?.stdout_str());
            let kind = st.as_ref().map(|s| s.kind);
            (st, kind)
        } else {
            (None, facts::parse_kind(&ctx.run(facts::kind_cmd(&a.path)).await?.stdout_str()))
        };
        let p = quote::quote(&a.path);
        let state = a.state.clone().unwrap_or_else(|| if kind == Some(FileKind::Dir) { "directory".into() } else { "file".into() });
        let prev = match kind {
            None => "absent",
            Some(FileKind::Dir) => "directory",
            Some(FileKind::Link) => "link",
            Some(_) => "file",
        };
        let mut plan = Plan::ok();
        plan.result.insert("path".into(), json!(a.path));
        plan.result.insert("state".into(), json!(state));
        match state.as_str() {
            "absent" => {
                if kind.is_some() {
                    let content = if kind == Some(FileKind::Dir) { Some(walk_list(ctx, &a.path).await?) } else { None };
                    plan.diff = state_diff(&a.path, prev, "absent", None, content);
                    plan.changes.push(format!("remove {}", a.path));
                    plan.commands.push(Cmd::shell(format!("rm -rf -- {p}")));
                    plan.destructive = Some(crate::safety::Destructive { reason: format!("deletes {}", a.path), paths: vec![a.path.clone()], ..Default::default() });
                }
                return Ok(plan);
            }
            "directory" => match kind {
                None => {
                    // As Ansible: each directory it creates, parents too, gets the mode, owner
                    // and group.
                    plan.changes.push(format!("create directory {}", a.path));
                    let who = match (&a.owner, &a.group) {
                        (None, None) => None,
                        (o, g) => Some(format!("{}:{}", o.clone().unwrap_or_default(), g.clone().unwrap_or_default()).trim_end_matches(':').to_string()),
                    };
                    let mut steps = Vec::new();
                    let mut cur = String::new();
                    for comp in a.path.split('/').filter(|c| !c.is_empty()) {
                        cur = if cur.is_empty() && !a.path.starts_with('/') { comp.to_string() } else { format!("{cur}/{comp}") };
                        let q = quote::quote(&cur);
                        let mut make = format!("mkdir -- {q}");
                        if let Some(m) = a.mode {
                            make.push_str(&format!(" && chmod {m:o} -- {q}"));
                        }
                        if let Some(w) = &who {
                            make.push_str(&format!(" && chown {} -- {q}", quote::quote(w)));
                        }
                        steps.push(format!("{{ [ -e {q} ] || {{ {make}; }}; }}"));
                    }
                    plan.commands.push(Cmd::shell(steps.join(" && ")));
                }
                Some(k) if k != FileKind::Dir => {
                    return Err(StepError::failed(format!("host {}: {} exists and is not a directory", ctx.host, a.path)));
                }
                _ => {}
            },
            "touch" => {
                plan.changes.push(format!("touch {}", a.path));
                plan.commands.push(Cmd::shell(format!("touch -- {p}")));
            }
            "file" => {
                if kind.is_none() {
                    return Err(StepError::failed(format!("host {}: file {} does not exist (use state: touch to create it)", ctx.host, a.path)));
                }
            }
            "link" => {
                let src = a.src.clone().ok_or_else(|| StepError::failed("file: state=link needs src"))?;
                // As Ansible: a real directory or file is never silently turned into (or filled with) a link.
                match kind {
                    Some(FileKind::Dir) => {
                        return Err(StepError::failed(format!("host {}: {} is a directory, not a link: refusing to replace it with a link to {src}", ctx.host, a.path)));
                    }
                    Some(FileKind::File) | Some(FileKind::Other) if !a.force.unwrap_or(false) => {
                        return Err(StepError::failed(format!("host {}: refusing to convert {} from a file to a link to {src} (set force: true to replace it)", ctx.host, a.path)));
                    }
                    Some(FileKind::File) | Some(FileKind::Other) => {
                        plan.destructive = Some(crate::safety::Destructive { reason: format!("replaces the file {} with a link", a.path), paths: vec![a.path.clone()], ..Default::default() });
                    }
                    _ => {}
                }
                let current = ctx.run(Cmd::argv(["readlink", "--", &a.path])).await?;
                if !(current.ok() && current.stdout_str().trim_end() == src) {
                    plan.diff = state_diff(&a.path, prev, "link", None, None);
                    plan.changes.push(format!("link {} -> {src}", a.path));
                    plan.commands.push(Cmd::shell(format!("ln -sfn -- {} {p}", quote::quote(&src))));
                }
                return Ok(plan);
            }
            other => return Err(StepError::failed(format!("file: unknown state '{other}'"))),
        }
        // The mode a path has before `mode:` is applied: its own, or what a new one is made with.
        let mode_before = st.as_ref().map(|s| s.mode).unwrap_or(if state == "directory" { 0o755 } else { 0o644 });
        let shown_state = if state == "touch" { "touch" } else { state.as_str() };
        if state == "directory" || state == "touch" || a.mode.is_some() {
            plan.diff = state_diff(&a.path, prev, shown_state, a.mode.map(|m| (mode_before, m)), None);
        }
        let recurse = if a.recurse.unwrap_or(false) { "-R " } else { "" };
        if let Some(m) = a.mode {
            if st.as_ref().map(|s| s.mode) != Some(m) || recurse == "-R " && kind.is_none() {
                plan.changes.push(format!("chmod {m:04o} {}", a.path));
                plan.commands.push(Cmd::shell(format!("chmod {recurse}{m:o} -- {p}")));
            }
        }
        let owner_differs = a.owner.as_ref().is_some_and(|o| st.as_ref().map(|s| &s.owner) != Some(o));
        let group_differs = a.group.as_ref().is_some_and(|g| st.as_ref().map(|s| &s.group) != Some(g));
        if owner_differs || group_differs {
            let who = format!("{}:{}", a.owner.clone().unwrap_or_default(), a.group.clone().unwrap_or_default());
            plan.changes.push(format!("chown {who} {}", a.path));
            plan.commands.push(Cmd::shell(format!("chown {recurse}{} -- {p}", quote::quote(who.trim_end_matches(':')))));
        }
        Ok(plan)
    }
}
