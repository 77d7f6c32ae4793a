//! Writing a whole file the safe way, shared by `copy`, `template` and
//! `blockinfile`: compare with what is there, show a unified diff, write a temp
//! file beside the target, run `validate` on it (`%s` is the temp file), and
//! only then rename it over the target. A failed validate leaves the live file
//! as it was.

use serde_json::json;

use crate::modules::{FileDiff, Plan, StepCtx, StepError};
use crate::facts::{FileKind, StatInfo};
use crate::transport::{quote, Cmd};

/// What to write.
pub struct WriteSpec {
    pub dest: String,
    pub content: Vec<u8>,
    pub mode: Option<u32>,
    pub owner: Option<String>,
    pub group: Option<String>,
    pub validate: Option<String>,
    /// Validate with the candidate in place (a config snippet the checker finds by
    /// include, like `nginx -t`): on failure the previous file is put back.
    pub validate_in_place: bool,
    /// `backup: true`: keep the previous file beside it as `dest.<n>.<time>~` (Ansible's name).
    pub backup: Option<String>,
}

/// Ansible's `backup: true` name for a copy of `dest`: `dest.<number>.<YYYY-mm-dd@HH:MM:SS>~`.
pub fn backup_name(dest: &str) -> String {
    format!("{dest}.{}.{}~", std::process::id() ^ (uuid::Uuid::new_v4().as_u128() as u32 & 0xffff), chrono::Local::now().format("%Y-%m-%d@%H:%M:%S"))
}

/// Plans writing `spec`: no change when content and attributes already match.
pub async fn plan_write(ctx: &StepCtx<'_>, spec: WriteSpec) -> Result<Plan, StepError> {
    let current = ctx.stat_read(&spec.dest).await?;
    let st = current.0.clone();
    let (content, mode, owner, group) = (spec.content.clone(), spec.mode, spec.owner.clone(), spec.group.clone());
    let mut plan = plan_write_over(ctx, spec, current)?;
    written_attrs(&mut plan.result, &content, mode, owner, group, st.as_ref());
    Ok(plan)
}

/// What ansible-core's copy, template and assemble return about the file they leave: its
/// checksums, size, state, mode, owner and group (as asked, else as they are).
pub fn written_attrs(r: &mut serde_json::Map<String, serde_json::Value>, content: &[u8], mode: Option<u32>, owner: Option<String>, group: Option<String>, st: Option<&StatInfo>) {
    r.insert("checksum".into(), json!(crate::modules::files::stat::digest("sha1", content).unwrap_or_default()));
    r.insert("md5sum".into(), json!(crate::modules::files::stat::digest("md5", content).unwrap_or_default()));
    r.insert("size".into(), json!(content.len()));
    r.insert("state".into(), json!("file"));
    if let Some(m) = mode.or(st.map(|s| s.mode)) {
        r.insert("mode".into(), json!(format!("{:04o}", m & 0o7777)));
    }
    if let Some(o) = owner.or(st.map(|s| s.owner.clone())) {
        r.insert("owner".into(), json!(o));
    }
    if let Some(g) = group.or(st.map(|s| s.group.clone())) {
        r.insert("group".into(), json!(g));
    }
    if let Some(s) = st {
        r.insert("uid".into(), json!(s.uid));
        r.insert("gid".into(), json!(s.gid));
    }
}

/// [`plan_write`] when the caller already read the destination ([`StepCtx::stat_read`]).
pub fn plan_write_over(ctx: &StepCtx<'_>, spec: WriteSpec, current: (Option<StatInfo>, Option<Vec<u8>>)) -> Result<Plan, StepError> {
    let (st, before) = current;
    if let Some(s) = &st {
        if s.kind == FileKind::Dir {
            return Err(StepError::failed(format!("host {}: {} is a directory; give the file's full path", ctx.host, spec.dest)));
        }
    }
    let mut plan = Plan::ok();
    plan.result.insert("dest".into(), json!(spec.dest));
    let content_same = before.as_deref() == Some(spec.content.as_slice());
    let mode_same = spec.mode.is_none() || st.as_ref().map(|s| s.mode) == spec.mode;
    let owner_same = spec.owner.is_none() || st.as_ref().map(|s| &s.owner) == spec.owner.as_ref();
    let group_same = spec.group.is_none() || st.as_ref().map(|s| &s.group) == spec.group.as_ref();
    if content_same && mode_same && owner_same && group_same {
        return Ok(plan);
    }
    // ansible-core's run-time refusal, where a write would validate (the load only warns; a
    // check run writes nothing and validates nothing).
    if let Some(v) = spec.validate.as_deref().filter(|v| !v.contains("%s") && !spec.validate_in_place && !ctx.check) {
        return Err(StepError::failed(format!("validate must contain %s: {v}")));
    }
    if !content_same {
        plan.changes.push(match &before {
            Some(_) => format!("update {} ({} bytes)", spec.dest, spec.content.len()),
            None => format!("create {} ({} bytes)", spec.dest, spec.content.len()),
        });
        plan.diff = Some(FileDiff { path: spec.dest.clone(), before: before.clone(), after: Some(spec.content.clone()), mode: None, prepared: None });
        if before.is_some() {
            plan.destructive = Some(crate::safety::Destructive {
                reason: format!("overwrites {}", spec.dest),
                paths: vec![spec.dest.clone()],
                ..Default::default()
            });
        }
        if let (Some(b), Some(_)) = (&spec.backup, &before) {
            plan.result.insert("backup_file".into(), json!(b));
        }
        plan.commands.push(write_cmd(&spec));
        return Ok(plan);
    }
    let d = quote::quote(&spec.dest);
    if let Some(m) = spec.mode.filter(|_| !mode_same) {
        plan.changes.push(format!("chmod {m:04o} {}", spec.dest));
        plan.commands.push(Cmd::shell(format!("chmod {m:o} {d}")));
    }
    if !owner_same || !group_same {
        let who = format!("{}:{}", spec.owner.clone().unwrap_or_default(), spec.group.clone().unwrap_or_default());
        plan.changes.push(format!("chown {who} {}", spec.dest));
        plan.commands.push(Cmd::shell(format!("chown {} {d}", quote::quote(who.trim_end_matches(':')))));
    }
    Ok(plan)
}

/// Ansible's "file attributes" diff (lineinfile, blockinfile): the mode the file has once its
/// content is written (its own, or the default 0644 of a new file) against `mode:`. A new file
/// in check mode shows none, as ansible-core's modules return before looking at attributes.
pub fn add_mode_diff(ctx: &StepCtx<'_>, plan: &mut Plan, dest: &str, st: &Option<StatInfo>, mode: Option<u32>) {
    let Some(m) = mode else { return };
    let before = match st {
        Some(s) => s.mode,
        None if ctx.check => return,
        None => 0o644,
    };
    if before == m {
        return;
    }
    let d = plan.diff.get_or_insert_with(|| FileDiff { path: dest.to_string(), before: None, after: None, mode: None, prepared: None });
    d.mode = Some((before, m));
}

/// ansible-core's refusal of a folder where the file to edit should be (rc 256).
pub fn refuse_dir(st: &Option<StatInfo>, path: &str) -> Result<(), StepError> {
    if st.as_ref().is_some_and(|s| s.kind == FileKind::Dir) {
        return Err(StepError::Failed { msg: format!("Path {path} is a directory !"), result: json!({"rc": 256}) });
    }
    Ok(())
}

/// A file created by `create: true`: its folder is made first (`mkdir -p`), as ansible-core does.
/// In the write's own round trip where the first command is recover's script (a `mkdir` only
/// when the folder is missing).
pub fn make_parent_first(plan: &mut Plan, path: &str) {
    if let Some(dir) = path.rsplit_once('/').map(|(d, _)| d).filter(|d| !d.is_empty()) {
        // ansible-core's message when the folder cannot be made: "Error creating DIR (why)".
        let mk = format!("[ -d {q} ] || __e=$(mkdir -p -- {q} 2>&1) || {{ printf '{MSG_MARK}Error creating %s (%s)\\n' {q} \"$__e\" >&2; exit 1; }}; ", q = quote::quote(dir), MSG_MARK = crate::modules::MSG_MARK);
        match plan.commands.first_mut() {
            Some(Cmd { script: crate::transport::Script::Shell(s), own_shell: false, .. }) => s.insert_str(0, &mk),
            _ => plan.commands.insert(0, Cmd::shell(format!("mkdir -p {}", quote::quote(dir)))),
        }
    }
}

/// The load-time check of an edit module's `validate`: it must name the candidate as `%s`.
pub fn check_validate(module: &str, task: &crate::playbook::Task) -> crate::error::SResult<()> {
    if let Some(v) = task.args.get("validate").and_then(serde_json::Value::as_str) {
        // A warning: the task may never write (then ansible-core never looks at validate).
        if !v.contains("%s") && !crate::template::is_template(v) {
            eprintln!("[WARNING]: {}: {module}: validate must contain %s (the candidate file): {v}; the step fails if it writes", task.arg_span("validate"));
        }
    }
    Ok(())
}

/// The one command that writes: temp file, attributes, validate, rename.
fn write_cmd(spec: &WriteSpec) -> Cmd {
    let d = quote::quote(&spec.dest);
    let t = quote::quote(&temp_beside(&spec.dest));
    // Small text goes in the script itself, written by the shell's own `printf`; anything
    // else comes on stdin (base64 on the wire) through `cat`.
    let inline = std::str::from_utf8(&spec.content).ok().filter(|c| c.len() <= INLINE_MAX && !c.contains('\0'));
    let fill = match inline {
        Some(text) => format!("printf '%s' {} > \"$t\"", quote::quote(text)),
        None => "cat > \"$t\"".to_string(),
    };
    // The temp file is made 0600 (umask 077: nobody else can open it while it holds the new
    // content), then given its mode: `mode:`, the live file's, or a new file's default.
    // A new file's default mode comes from the shell's umask, noted once per session
    // (`$__dm`, see transport's SHELL_INIT), else asked here.
    let mut s = format!("set -e; d={d}; t={t}; __m=${{__dm:-$(printf %o $((0666 & ~0$(umask))))}}; umask 077; trap '[ ! -e \"$t\" ] || rm -f \"$t\"' EXIT; {fill}; ");
    if let Some(b) = &spec.backup {
        s.push_str(&format!("if [ -e \"$d\" ]; then cp -p \"$d\" {}; fi; ", quote::quote(b)));
    }
    match spec.mode {
        Some(m) => s.push_str(&format!("chmod {m:o} \"$t\"; ")),
        None => s.push_str("if [ -e \"$d\" ]; then chmod --reference=\"$d\" \"$t\"; else chmod \"$__m\" \"$t\"; fi; "),
    }
    if spec.owner.is_some() || spec.group.is_some() {
        let who = format!("{}:{}", spec.owner.clone().unwrap_or_default(), spec.group.clone().unwrap_or_default());
        s.push_str(&format!("chown {} \"$t\"; ", quote::quote(who.trim_end_matches(':'))));
    }
    match (&spec.validate, spec.validate_in_place) {
        (Some(v), false) => {
            // `%s` is the candidate file; the rest is the playbook's own command.
            s.push_str(&format!("{}; ", v.replace("%s", "\"$t\"")));
            s.push_str("mv -f \"$t\" \"$d\"");
        }
        (Some(v), true) => {
            // Swap in, check, and put the previous file back (atomically) if the check fails.
            s.push_str("p=\"$t.prev\"; if [ -e \"$d\" ]; then cp -p \"$d\" \"$p\"; fi; mv -f \"$t\" \"$d\"; ");
            s.push_str(&format!(
                "if ! {{ {v}; }}; then if [ -e \"$p\" ]; then mv -f \"$p\" \"$d\"; else rm -f \"$d\"; fi; echo 'recover: the check failed; the previous file was put back' >&2; exit 1; fi; rm -f \"$p\""
            ));
        }
        (None, _) => s.push_str("mv -f \"$t\" \"$d\""),
    }
    let label = match (&spec.validate, spec.validate_in_place) {
        (Some(v), false) => format!("write {} (validated first by `{v}`; the live file is kept if that fails)", spec.dest),
        (Some(v), true) => format!("write {} (swapped in, checked by `{v}`, the previous file put back if that fails)", spec.dest),
        (None, _) => format!("write {} (temp file, then rename)", spec.dest),
    };
    let cmd = Cmd::shell(s).label(label);
    if inline.is_some() {
        cmd
    } else {
        cmd.stdin(spec.content.clone())
    }
}

/// Content up to this size, text without NUL, is written by `printf` in the command itself.
const INLINE_MAX: usize = 64 * 1024;

/// A hidden temp file beside `dest` (same folder, so the final rename is atomic), with a
/// random part: two runs, or two users' shells, never share one.
fn temp_beside(dest: &str) -> String {
    let (dir, name) = match dest.rfind('/') {
        Some(i) => (&dest[..=i], &dest[i + 1..]),
        None => ("", dest),
    };
    format!("{dir}.{name}.recover-tmp.{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}
