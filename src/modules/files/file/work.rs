//! What `file` does to a path: the wanted state, the commands that reach it, and the result
//! ansible-core's module returns.

use serde_json::{json, Value as Json};

use super::state::*;
use crate::modules::{Plan, StepCtx, StepError};
use crate::transport::{quote, Cmd};

/// The wanted owner and group as ids (a name is looked up on the host).
pub(super) struct Wanted {
    pub(super) mode: Option<u32>,
    /// A symbolic mode applied to each path from its own mode (`recurse`), with the umask.
    pub(super) symbolic: Option<(String, u32)>,
    pub(super) uid: Option<(u32, String)>,
    pub(super) gid: Option<(u32, String)>,
    pub(super) mtime: Stamp,
    pub(super) atime: Stamp,
}

/// The plan being built: changes in words, commands, the diff, whether anything changes.
pub(super) struct Work<'a> {
    pub(super) plan: Plan,
    pub(super) diff: Diff,
    pub(super) changed: bool,
    pub(super) check: bool,
    pub(super) want: &'a Wanted,
}

impl Work<'_> {
    pub(super) fn run(&mut self, what: String, cmd: String) {
        self.plan.changes.push(what);
        self.plan.commands.push(Cmd::shell(cmd));
        self.changed = true;
    }
    /// ansible-core's `set_fs_attributes_if_different` then `update_timestamp_for_file` on one
    /// path (`node`: what is there now, not following a link; `None`: made by this step, as
    /// `fresh`). `diff`: record the differences in the step's diff.
    pub(super) fn attributes(&mut self, path: &str, node: Option<&Node>, fresh: Node, diff: bool) {
        let q = quote::quote(path);
        let Some(n) = node.cloned().or_else(|| (!self.check).then_some(fresh)) else {
            // Check mode, the path not there: ansible-core counts a change and looks no further.
            if self.want.uid.is_some() || self.want.gid.is_some() || self.want.mode.is_some() || self.want.symbolic.is_some() {
                self.changed = true;
            }
            return;
        };
        let link = n.is_link();
        let h = if link { "-h " } else { "" };
        if let Some((uid, name)) = &self.want.uid {
            if n.uid != *uid {
                if diff {
                    self.diff.set("owner", json!(n.uid), json!(uid));
                }
                self.run(format!("chown {name} {path}"), format!("chown {h}{uid} -- {q}"));
            }
        }
        if let Some((gid, name)) = &self.want.gid {
            if n.gid != *gid {
                if diff {
                    self.diff.set("group", json!(n.gid), json!(gid));
                }
                self.run(format!("chgrp {name} {path}"), format!("chgrp {h}{gid} -- {q}"));
            }
        }
        let mode = match &self.want.symbolic {
            Some((spec, umask)) if !link => crate::modules::support::modes::apply(spec, n.mode, n.is_dir(), *umask).ok(),
            _ => self.want.mode,
        };
        if let Some(m) = mode {
            if n.mode != m {
                if diff {
                    self.diff.set("mode", json!(format!("0{:03o}", n.mode)), json!(format!("0{m:03o}")));
                }
                if link {
                    // A link has no mode of its own on Linux: ansible-core tries, puts the
                    // target's back, and counts a change.
                    self.changed = true;
                } else {
                    self.run(format!("chmod {m:04o} {path}"), format!("chmod {m:o} -- {q}"));
                }
            }
        }
        self.times(path, &n, diff);
    }
    /// `update_timestamp_for_file`.
    pub(super) fn times(&mut self, path: &str, n: &Node, diff: bool) {
        let q = quote::quote(path);
        let (m, a) = (&self.want.mtime, &self.want.atime);
        if *m == Stamp::Preserve && *a == Stamp::Preserve {
            return;
        }
        let now = chrono::Utc::now();
        let now_f = json!(now.timestamp() as f64 + f64::from(now.timestamp_subsec_nanos()) * 1e-9);
        let (pm, pa) = (py_time(&n.mtime), py_time(&n.atime));
        let value = |s: &Stamp, prev: &Json| match s {
            Stamp::Preserve => prev.clone(),
            Stamp::Now => now_f.clone(),
            Stamp::At(t) => json!(*t as f64),
        };
        let (nm, na) = (value(m, &pm), value(a, &pa));
        let both_now = *m == Stamp::Now && *a == Stamp::Now;
        if !both_now && nm == pm && na == pa {
            return;
        }
        if diff {
            if nm != pm {
                self.diff.set("mtime", pm.clone(), nm.clone());
            }
            if na != pa {
                self.diff.set("atime", pa.clone(), na.clone());
            }
        }
        let h = if n.is_link() { "-h " } else { "" };
        let arg = |s: &Stamp| match s {
            Stamp::At(t) => format!("-d @{t} "),
            _ => String::new(),
        };
        let mut cmds = Vec::new();
        if both_now {
            cmds.push(format!("touch -c {h}-- {q}"));
        } else {
            if *m != Stamp::Preserve {
                cmds.push(format!("touch -c {h}-m {}-- {q}", arg(m)));
            }
            if *a != Stamp::Preserve {
                cmds.push(format!("touch -c {h}-a {}-- {q}", arg(a)));
            }
        }
        self.run(format!("set the times of {path}"), cmds.join(" && "));
    }
}

/// `recursive_set_attributes`: every entry under the folder, as os.walk finds them; a link
/// gets the attributes itself and, with `follow`, what it points to (when that exists).
pub(super) async fn recurse_attributes(ctx: &StepCtx<'_>, w: &mut Work<'_>, root: &str, follow: bool) -> Result<(), StepError> {
    let r = quote::quote(root);
    let mut script = format!("find {r} -mindepth 1 -exec sh -c 'for f; do printf \"P\\t%s\\t\" \"$f\"; stat -c \"{STAT_FMT}\" -- \"$f\"; done' sh {{}} + 2>/dev/null");
    if follow {
        script.push_str(&format!("; find {r} -mindepth 1 -type l -exec sh -c 'for f; do printf \"T\\t%s\\t\" \"$f\"; stat -L -c \"{STAT_FMT}\" -- \"$f\" 2>/dev/null || echo ABSENT; done' sh {{}} + 2>/dev/null"));
    }
    let out = ctx.run(Cmd::shell(format!("{script}; true"))).await?;
    let text = out.stdout_str();
    let mut entries: Vec<(String, Node)> = Vec::new();
    let mut targets: std::collections::HashMap<String, Node> = std::collections::HashMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.splitn(3, '\t').collect();
        if f.len() != 3 {
            continue;
        }
        match (f[0], parse_node(f[2])) {
            ("P", Some(n)) => entries.push((f[1].to_string(), n)),
            ("T", Some(n)) => {
                targets.insert(f[1].to_string(), n);
            }
            _ => {}
        }
    }
    for (p, n) in entries {
        w.attributes(&p, Some(&n), n.clone(), false);
        if follow && n.is_link() {
            if let Some(t) = targets.get(&p) {
                // chmod and chown follow the link: they reach what it points to.
                let mut follow_node = t.clone();
                follow_node.kind = if t.is_dir() { "directory".into() } else { "regular file".into() };
                w.attributes(&p, Some(&follow_node), follow_node.clone(), false);
            }
        }
    }
    Ok(())
}

pub(super) fn finish_at(w: Work<'_>, result: serde_json::Map<String, Json>, path: &str) -> Result<Plan, StepError> {
    finish(w, result, Some(path))
}

pub(super) fn finish(w: Work<'_>, result: serde_json::Map<String, Json>, path: Option<&str>) -> Result<Plan, StepError> {
    let Work { mut plan, diff, changed, .. } = w;
    plan.result = result;
    if let Some(p) = path {
        plan.diff = diff.into_file_diff(p);
    }
    if changed && plan.changes.is_empty() {
        // A change ansible-core counts that needs no command (a link's mode).
        plan.changes.push("attributes ansible-core counts as changed (no command needed)".into());
    }
    if plan.changes.is_empty() {
        plan.commands.clear();
    }
    Ok(plan)
}
