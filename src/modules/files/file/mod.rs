//! `file`: a directory, an empty file (`touch`), a symbolic or hard link, the attributes of
//! what is there, or nothing (`absent`); with mode, owner, group, access and modification
//! times, `recurse` over a folder and `follow` of links. The rules are ansible-core's, state by
//! state (its `ensure_*` functions): what the path is decides, a link is followed to what it
//! points to unless `follow: false`, created parents get the mode, and the `--diff` is its
//! JSON of path, state, mode, owner, group and times. Everything is read in one round trip;
//! the changes are plain commands (`mkdir`, `chmod`, `chown`, `touch -d`, `ln`, `rm`).
//!
//! Removing a path, or replacing a file or an empty folder with a link, is destructive: the
//! safety engine backs the path up first.

mod state;
mod work;

use async_trait::async_trait;
use documented::Documented;
use serde::Deserialize;
use serde_json::{json, Value as Json};
use state::*;
use work::*;

use crate::modules::{de, opt, req, typed, ArgSpec, Kind, Module, Plan, StepCtx, StepError};
use crate::transport::{quote, Cmd};

/// `file`: a path's kind and attributes: a file, a directory (made with its parents), a symbolic or
/// hard link, touched or absent; mode, owner, group and times, recursively for a directory with
/// `recurse`.
///
/// Returns: `path` (or `dest` for links), `state`, `mode`, `owner`, `group`, `uid`, `gid`, `size`;
/// `diff` with `before`/`after`.
///
/// Check mode: reads the path and reports what would change; removing, linking over or retyping a
/// path is shown, not done.
#[derive(Documented)]
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
    owner: Option<Json>,
    group: Option<Json>,
    src: Option<String>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    recurse: Option<bool>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    force: Option<bool>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    follow: Option<bool>,
    modification_time: Option<String>,
    modification_time_format: Option<String>,
    access_time: Option<String>,
    access_time_format: Option<String>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    unsafe_writes: Option<bool>,
}

const STATES: &[&str] = &["absent", "directory", "file", "hard", "link", "touch"];

#[async_trait]
impl Module for File {
    fn name(&self) -> &'static str {
        "file"
    }
    fn doc(&self) -> &'static str {
        Self::DOCS
    }
    fn spec(&self) -> &'static [ArgSpec] {
        const S: &[ArgSpec] = &[
            req("path", Kind::Str).aliases(&["dest", "name"]).doc("The path to manage."),
            opt("state", Kind::Str).doc("`file`, `directory`, `link`, `hard`, `touch` or `absent` (the state it has, when unset)."),
            opt("mode", Kind::Any).doc("The mode (octal like `0644`, or symbolic like `u+rwx`)."),
            opt("owner", Kind::Any).doc("The owner (a name or a uid)."),
            opt("group", Kind::Any).doc("The group (a name or a gid)."),
            opt("src", Kind::Str).doc("The target of a `link` or `hard` link."),
            opt("recurse", Kind::Bool).default("false").doc("Set `mode`, `owner` and `group` on everything below a `directory`."),
            opt("force", Kind::Bool).default("false").doc("Make a link even where a file or a missing target is."),
            opt("follow", Kind::Bool).default("true").doc("Set attributes on a link's target, not the link."),
            opt("modification_time", Kind::Str).doc("`now`, `preserve`, or a time in `modification_time_format`."),
            opt("modification_time_format", Kind::Str).default("%Y%m%d%H%M.%S").doc("The format of `modification_time` (strftime)."),
            opt("access_time", Kind::Str).doc("`now`, `preserve`, or a time in `access_time_format`."),
            opt("access_time_format", Kind::Str).default("%Y%m%d%H%M.%S").doc("The format of `access_time` (strftime)."),
            opt("unsafe_writes", Kind::Bool).default("false").doc("Accepted for Ansible; has no effect here."),
        ];
        S
    }
    fn validate(&self, task: &crate::playbook::Task) -> crate::error::SResult<()> {
        if let Json::Object(a) = &task.args {
            if let Some(Json::String(s)) = a.get("state") {
                if !crate::template::is_template(s) && !STATES.contains(&s.as_str()) {
                    return Err(crate::error::SourceError::new(task.arg_span("state"), format!("file: value of state must be one of: {}, got: {s}", STATES.join(", "))));
                }
            }
        }
        Ok(())
    }
    async fn plan(&self, ctx: &StepCtx<'_>, args: &Json) -> Result<Plan, StepError> {
        let mut plain = args.clone();
        if let Some(m) = plain.as_object_mut() {
            m.remove(crate::modules::support::modes::RECURSE_SYMBOLIC);
            m.remove(crate::modules::support::modes::RECURSE_UMASK);
        }
        let a: Args = typed("file", &plain)?;
        let _ = a.unsafe_writes;
        let follow = a.follow.unwrap_or(true);
        let recurse = a.recurse.unwrap_or(false);
        let force = a.force.unwrap_or(false);
        let name_of = |v: &Option<Json>| v.as_ref().filter(|v| !v.is_null()).map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()));
        let (owner, group) = (name_of(&a.owner), name_of(&a.group));
        // One round trip: the path, the ids of owner and group, and for recurse the tree.
        let mut script = format!("p={}; {}; printf 'I\\t%s\\t%s\\n' \"${{__uid:-$(id -u)}}\" \"${{__gid:-$(id -g)}}\"", quote::quote(&a.path), info_script("p", ""));
        if let Some(src) = &a.src {
            script.push_str(&format!("; s={}; {}", quote::quote(src), info_script("s", "s")));
        }
        for (tag, v, db) in [("U", &owner, "passwd"), ("G", &group, "group")] {
            if let Some(v) = v {
                script.push_str(&format!("; printf '{tag}\\t%s\\n' \"$(getent {db} {} | cut -d: -f3)\"", quote::quote(v)));
            }
        }
        let out = ctx.run(Cmd::shell(script).label(format!("stat {}", a.path))).await?;
        let text = out.stdout_str();
        let mut info = parse_info(&text, "");
        let src_info = parse_info(&text, "s");
        let id_of = |tag: &str, v: &Option<String>, what: &str| -> Result<Option<(u32, String)>, StepError> {
            let Some(v) = v else { return Ok(None) };
            if let Ok(n) = v.parse::<u32>() {
                return Ok(Some((n, v.clone())));
            }
            let found = text.lines().find_map(|l| l.strip_prefix(&format!("{tag}\t"))).and_then(|s| s.trim().parse::<u32>().ok());
            match found {
                Some(n) => Ok(Some((n, v.clone()))),
                None => Err(StepError::failed(format!("chown failed: failed to look up {what} {v}"))),
            }
        };
        let mut path = a.path.clone();
        let mut state = a.state.clone();
        // A link or hard link made inside a folder given as path: ansible-core names it after src.
        if !matches!(state.as_deref(), Some("link") | Some("absent")) && info.is_dir() {
            if let Some(src) = &a.src {
                let base = src.trim_end_matches('/').rsplit('/').next().unwrap_or(src);
                path = format!("{}/{base}", path.trim_end_matches('/'));
                let o = ctx.run(Cmd::shell(format!("p={}; {}", quote::quote(&path), info_script("p", "")))).await?;
                info = parse_info(&o.stdout_str(), "");
            }
        }
        let prev = info.state();
        let state = match state.take() {
            Some(s) => s,
            None if prev != "absent" => prev.to_string(),
            None if recurse => "directory".into(),
            None => "file".into(),
        };
        if !STATES.contains(&state.as_str()) {
            return Err(StepError::failed(format!("value of state must be one of: {}, got: {state}", STATES.join(", "))));
        }
        if recurse && state != "directory" {
            return Err(StepError::Failed { msg: "recurse option requires state to be 'directory'".into(), result: json!({"path": path}) });
        }
        if a.src.is_some() && !matches!(state.as_str(), "link" | "hard") {
            return Err(StepError::Failed { msg: "src option requires state to be 'link' or 'hard'".into(), result: json!({"path": path}) });
        }
        let stamp_of = |v: &Option<String>, f: &Option<String>| -> Result<Stamp, StepError> {
            let v = v.clone().unwrap_or_else(|| if state == "touch" { "now".into() } else { "preserve".into() });
            stamp(&v, f.as_deref().unwrap_or("%Y%m%d%H%M.%S"))
        };
        let symbolic = args.get(crate::modules::support::modes::RECURSE_SYMBOLIC).and_then(Json::as_str).map(|s| (s.to_string(), args.get(crate::modules::support::modes::RECURSE_UMASK).and_then(Json::as_u64).unwrap_or(0o022) as u32));
        let want = Wanted {
            mode: a.mode,
            symbolic,
            uid: if state == "absent" { None } else { id_of("U", &owner, "user")? },
            gid: if state == "absent" { None } else { id_of("G", &group, "group")? },
            mtime: stamp_of(&a.modification_time, &a.modification_time_format)?,
            atime: stamp_of(&a.access_time, &a.access_time_format)?,
        };
        let mut w = Work { plan: Plan::ok(), diff: Diff::default(), changed: false, check: ctx.check, want: &want };
        // A new path as it will be made: owned by the step's user, 0755 or 0644 (umask 022).
        let (my_uid, my_gid) = text
            .lines()
            .find_map(|l| l.strip_prefix("I\t"))
            .and_then(|r| r.split_once('\t'))
            .map(|(u, g)| (u.trim().parse().unwrap_or(0), g.trim().parse().unwrap_or(0)))
            .unwrap_or((0, 0));
        let now = chrono::Utc::now();
        let now_s = format!("{}.{:09}", now.timestamp(), now.timestamp_subsec_nanos());
        let fresh = |dir: bool| Node { kind: if dir { "directory".into() } else { "regular empty file".into() }, mode: if dir { 0o755 } else { 0o644 }, uid: my_uid, gid: my_gid, nlink: 1, ino: 0, mtime: now_s.clone(), atime: now_s.clone() };
        let q = quote::quote(&path);
        let mut result = serde_json::Map::new();
        result.insert("state".into(), json!(if state == "touch" { "file" } else { state.as_str() }));
        match state.as_str() {
            "absent" => {
                result.insert("path".into(), json!(path));
                result.insert("state".into(), json!("absent"));
                // A path that names a system folder (`/tmp/x/../../..`) is refused by the safety
                // engine whether or not the shell can reach it now.
                if prev == "absent" && crate::safety::paths::system_root(&path).is_some() {
                    w.run(format!("remove {path}"), format!("rm -rf -- {q}"));
                    w.plan.destructive = Some(crate::safety::Destructive { reason: format!("deletes {path}"), paths: vec![path.clone()], ..Default::default() });
                }
                if prev != "absent" {
                    w.diff = Diff::initial(&path, "absent", prev);
                    if prev == "directory" {
                        w.diff.before.insert("path_content".into(), walk_list(ctx, &path).await?);
                    }
                    w.run(format!("remove {path}"), format!("rm -rf -- {q}"));
                    w.plan.destructive = Some(crate::safety::Destructive { reason: format!("deletes {path}"), paths: vec![path.clone()], ..Default::default() });
                }
            }
            "touch" => {
                result.insert("dest".into(), json!(path));
                if prev == "absent" {
                    if ctx.check {
                        w.changed = true;
                        w.plan.changes.push(format!("create {path}"));
                        return finish(w, result, None);
                    }
                    w.run(format!("create {path}"), format!("touch -- {q}"));
                }
                w.diff = Diff::initial(&path, "touch", prev);
                let (target, node) = attr_target(&path, &info, follow);
                w.attributes(&target, node.as_ref(), fresh(false), true);
            }
            "file" => {
                let (p, st, node) = followed(&path, prev, &info, follow);
                if !matches!(st, "file" | "hard") {
                    return Err(StepError::Failed { msg: format!("file ({p}) is {st}, cannot continue"), result: json!({"path": p, "state": st}) });
                }
                result.insert("path".into(), json!(p));
                w.diff = Diff::initial(&p, "file", st);
                w.attributes(&p, node.as_ref(), fresh(false), true);
                return finish_at(w, result, &p);
            }
            "directory" => {
                let (p, st, node) = followed(&path, prev, &info, follow);
                result.insert("path".into(), json!(p));
                w.diff = Diff::initial(&p, "directory", st);
                if st == "absent" {
                    w.changed = true;
                    w.plan.changes.push(format!("create directory {p}"));
                    if ctx.check {
                        return finish_at(w, result, &p);
                    }
                    // As ansible-core: each folder it makes, parents too, gets the attributes.
                    let mut cur = String::new();
                    let mut steps = Vec::new();
                    for comp in p.split('/').filter(|c| !c.is_empty()) {
                        cur = if cur.is_empty() && !p.starts_with('/') { comp.to_string() } else { format!("{cur}/{comp}") };
                        let cq = quote::quote(&cur);
                        let mut make = format!("mkdir -- {cq}");
                        if let Some((uid, _)) = &want.uid {
                            make.push_str(&format!(" && chown {uid} -- {cq}"));
                        }
                        if let Some((gid, _)) = &want.gid {
                            make.push_str(&format!(" && chgrp {gid} -- {cq}"));
                        }
                        if let Some(m) = want.mode {
                            make.push_str(&format!(" && chmod {m:o} -- {cq}"));
                        }
                        steps.push(format!("{{ [ -e {cq} ] || {{ {make}; }}; }}"));
                    }
                    w.plan.commands.push(Cmd::shell(steps.join(" && ")));
                    if let Some(m) = want.mode.filter(|m| *m != 0o755) {
                        w.diff.set("mode", json!("0755"), json!(format!("0{m:03o}")));
                    }
                    if let Some((uid, _)) = &want.uid {
                        if *uid != my_uid {
                            w.diff.set("owner", json!(my_uid), json!(uid));
                        }
                    }
                    if let Some((gid, _)) = &want.gid {
                        if *gid != my_gid {
                            w.diff.set("group", json!(my_gid), json!(gid));
                        }
                    }
                    if want.mtime != Stamp::Preserve || want.atime != Stamp::Preserve {
                        w.times(&p, &fresh(true), true);
                    }
                    return finish_at(w, result, &p);
                }
                if st != "directory" {
                    return Err(StepError::Failed { msg: format!("{p} already exists as a {st}"), result: json!({"path": p}) });
                }
                w.attributes(&p, node.as_ref(), fresh(true), true);
                if recurse {
                    recurse_attributes(ctx, &mut w, &p, follow).await?;
                }
                return finish_at(w, result, &p);
            }
            "link" => {
                let mut src = a.src.clone();
                if src.is_none() && follow && info.exists() {
                    src = info.link.clone();
                }
                let relpath = if !info.node.as_ref().is_some_and(Node::is_link) && info.is_dir() { path.clone() } else { parent_of(&path) };
                if let Some(s) = &src {
                    let absrc = if s.starts_with('/') { s.clone() } else { format!("{}/{s}", relpath.trim_end_matches('/')) };
                    if !force && !exists_remote(ctx, &absrc).await? {
                        return Err(StepError::Failed { msg: format!("src file does not exist, use 'force=yes' if you really want to create the link: {absrc}"), result: json!({"path": path, "src": s}) });
                    }
                }
                match prev {
                    "directory" if !force => return Err(StepError::failed(format!("refusing to convert from directory to symlink for {path}"))),
                    "directory" => {
                        let empty = ctx.run(Cmd::shell(format!("[ -z \"$(ls -A -- {q})\" ]"))).await?.rc == 0;
                        if !empty {
                            return Err(StepError::failed(format!("the directory {path} is not empty, refusing to convert it")));
                        }
                    }
                    "file" | "hard" if !force => return Err(StepError::failed(format!("refusing to convert from {prev} to symlink for {path}"))),
                    _ => {}
                }
                w.diff = Diff::initial(&path, "link", prev);
                result.insert("dest".into(), json!(path));
                result.insert("src".into(), json!(src));
                let src_s = match (&src, prev) {
                    (None, "link") => String::new(),
                    (None, _) => return Err(StepError::failed("src is required for creating new symlinks")),
                    (Some(s), _) => s.clone(),
                };
                let mut link_made = false;
                match prev {
                    "link" => {
                        if src.is_some() && info.link.as_deref() != Some(src_s.as_str()) {
                            w.diff.set("src", json!(info.link), json!(src_s));
                            link_made = true;
                        }
                    }
                    _ => link_made = true,
                }
                if link_made {
                    let sq = quote::quote(&src_s);
                    match prev {
                        "absent" => w.run(format!("link {path} -> {src_s}"), format!("ln -s -- {sq} {q}")),
                        "directory" => w.run(format!("replace the empty folder {path} with a link to {src_s}"), format!("rmdir -- {q} && ln -s -- {sq} {q}")),
                        _ => {
                            let tmp = quote::quote(&format!("{}/.recover.{}.tmp", parent_of(&path), uuid::Uuid::new_v4().simple()));
                            w.run(format!("link {path} -> {src_s}"), format!("ln -s -- {sq} {tmp} && mv -Tf -- {tmp} {q}"));
                        }
                    }
                    if matches!(prev, "file" | "hard" | "directory") {
                        w.plan.destructive = Some(crate::safety::Destructive { reason: format!("replaces the {prev} {path} with a link"), paths: vec![path.clone()], ..Default::default() });
                    }
                }
                if ctx.check && !info.exists() {
                    return finish(w, result, Some(&path));
                }
                // Attributes: of what the link points to (follow), or of the link itself; in
                // check mode (or with no new link), of what is there now.
                let abs = if src_s.starts_with('/') { src_s.clone() } else { format!("{}/{src_s}", parent_of(&path)) };
                let (attr_path, attr_node, is_link_after) = if ctx.check || !link_made {
                    let (p, n) = attr_target(&path, &info, follow);
                    (p, n, info.node.as_ref().is_some_and(Node::is_link))
                } else if follow {
                    (abs.clone(), stat_node(ctx, &abs).await?, true)
                } else {
                    let n = Node { kind: "symbolic link".into(), mode: 0o777, uid: my_uid, gid: my_gid, nlink: 1, ino: 0, mtime: now_s.clone(), atime: now_s.clone() };
                    (path.clone(), Some(n), true)
                };
                if follow && is_link_after && attr_node.is_none() {
                    result.insert("warnings".into(), json!(["Cannot set fs attributes on a non-existent symlink target. follow should be set to False to avoid this."]));
                } else {
                    let f = attr_node.clone().unwrap_or_else(|| fresh(false));
                    w.attributes(&attr_path, attr_node.as_ref(), f, true);
                }
            }
            "hard" => {
                let src = a.src.clone();
                if prev != "hard" && src.is_none() {
                    return Err(StepError::failed("src is required for creating new hardlinks"));
                }
                if src.is_some() && !src_info.exists() {
                    return Err(StepError::Failed { msg: "src does not exist".into(), result: json!({"dest": path, "src": src}) });
                }
                w.diff = Diff::initial(&path, "hard", prev);
                result.insert("dest".into(), json!(path));
                result.insert("src".into(), json!(src));
                let src_ino = src_info.target.as_ref().or(src_info.node.as_ref()).map(|n| n.ino);
                let mut make = false;
                match prev {
                    "absent" => make = true,
                    "link" => {
                        if info.link.as_deref() != src.as_deref() {
                            w.diff.set("src", json!(info.link), json!(src));
                            make = true;
                        }
                    }
                    "hard" => {
                        if src.is_some() && info.node.as_ref().map(|n| n.ino) != src_ino {
                            if !force {
                                return Err(StepError::Failed { msg: "Cannot link, different hard link exists at destination".into(), result: json!({"dest": path, "src": src}) });
                            }
                            make = true;
                        }
                    }
                    "file" => {
                        if !force {
                            return Err(StepError::Failed { msg: format!("Cannot link, {prev} exists at destination"), result: json!({"dest": path, "src": src}) });
                        }
                        make = true;
                    }
                    _ => {
                        if info.node.as_ref().map(|n| n.ino) == src_ino {
                            return finish(w, json!({"path": path}).as_object().cloned().unwrap_or_default(), None);
                        }
                        return Err(StepError::Failed { msg: "Cannot link: different hard link exists at destination".into(), result: json!({"dest": path, "src": src}) });
                    }
                }
                let s = src.clone().unwrap_or_default();
                if make {
                    let sq = quote::quote(&s);
                    if prev == "absent" {
                        let from = if follow && src_info.node.as_ref().is_some_and(Node::is_link) { quote::quote(src_info.link.as_deref().unwrap_or(&s)) } else { sq.clone() };
                        w.run(format!("hard link {path} to {s}"), format!("ln -- {from} {q}"));
                    } else {
                        let tmp = quote::quote(&format!("{}/.recover.{}.tmp", parent_of(&path), uuid::Uuid::new_v4().simple()));
                        w.run(format!("hard link {path} to {s}"), format!("ln -- {sq} {tmp} && mv -Tf -- {tmp} {q}"));
                        if prev == "file" {
                            w.plan.destructive = Some(crate::safety::Destructive { reason: format!("replaces the file {path} with a hard link"), paths: vec![path.clone()], ..Default::default() });
                        }
                    }
                }
                if ctx.check && !info.exists() {
                    return finish(w, result, Some(&path));
                }
                // After the link, path and src are one inode: its attributes are src's.
                let node = if make && !ctx.check { src_info.target.clone().or(src_info.node.clone()) } else { info.node.clone() };
                let (target, _) = attr_target(&path, &Info { node: node.clone(), ..info.clone() }, false);
                w.attributes(&target, node.as_ref(), fresh(false), true);
            }
            _ => unreachable!(),
        }
        finish(w, result, Some(&path))
    }
}

