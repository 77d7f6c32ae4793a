//! `copy` (from `content` or a local `src` file) and `template` (a Jinja2
//! file rendered with the host's variables). Both write through
//! [`crate::modules::write`]: diff, temp file, `validate`, atomic rename.

use async_trait::async_trait;
use documented::Documented;
use serde::Deserialize;
use serde_json::Value as Json;

use crate::modules::support::write::{plan_write, WriteSpec};
use crate::modules::{MODE_ARG, OWNER_ARG, GROUP_ARG, VALIDATE_ARG, BACKUP_ARG, UNSAFE_WRITES_ARG, de, find_src, opt, req, typed, ArgSpec, Kind, Module, Plan, StepCtx, StepError};

/// `copy`: a file (or a folder, recursively) from this machine, or `content`, written to the host
/// through a temporary file, validated and renamed over the old one.
///
/// Returns: `dest`, `src`, `checksum`, `md5sum`, `size`, `mode`, `owner`, `group`, `uid`, `gid`;
/// `backup_file` with `backup: true`.
///
/// Check mode: compares the bytes with the host's and shows the diff; writes nothing.
#[derive(Documented)]
pub struct Copy;
/// `template`: a Jinja2 template rendered here with the host's variables (Ansible's environment:
/// `trim_blocks`, `ansible_managed`, `template_*` variables), then written as `copy` writes.
///
/// Returns: as `copy`: `dest`, `src`, `checksum`, `size`, `mode`, `owner`, `group`, `uid`, `gid`;
/// `backup_file` with `backup: true`.
///
/// Check mode: renders the template and shows the diff against the host's file; writes nothing.
#[derive(Documented)]
pub struct Template;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(alias = "path")]
    dest: String,
    src: Option<String>,
    content: Option<Json>,
    #[serde(default, deserialize_with = "de::mode")]
    mode: Option<u32>,
    owner: Option<String>,
    group: Option<String>,
    validate: Option<String>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    validate_in_place: Option<bool>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    backup: Option<bool>,
    /// `force: false`: only when the destination does not exist yet.
    #[serde(default, deserialize_with = "de::bool_loose")]
    force: Option<bool>,
    /// copy: `src` is a file on the host, not on the controller.
    #[serde(default, deserialize_with = "de::bool_loose")]
    remote_src: Option<bool>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    follow: Option<bool>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    local_follow: Option<bool>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    decrypt: Option<bool>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    unsafe_writes: Option<bool>,
    /// copy of a folder: the mode of the folders it makes.
    #[serde(default, deserialize_with = "de::mode")]
    directory_mode: Option<u32>,
    /// template: `\n` (the default), `\r\n` or `\r` for the written file's line ends.
    newline_sequence: Option<String>,
    output_encoding: Option<String>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    trim_blocks: Option<bool>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    lstrip_blocks: Option<bool>,
}

const COPY_SPEC: &[ArgSpec] = &[
    req("dest", Kind::Str).doc("Where on the host to write (a folder when `src` is one, or ends with `/`)."),
    opt("src", Kind::Str).doc("The file or folder to copy, found in the role's `files/`, the playbook's, or the project's."),
    opt("content", Kind::Any).doc("The text to write instead of `src`."),
    MODE_ARG,
    OWNER_ARG,
    GROUP_ARG,
    VALIDATE_ARG,
    opt("validate_in_place", Kind::Bool).default("false").doc("Run `validate` on the file in its place."),
    BACKUP_ARG,
    opt("force", Kind::Bool).default("true").doc("Replace a file whose content differs (`false`: only create a missing one)."),
    opt("remote_src", Kind::Bool).default("false").doc("`src` is on the host."),
    opt("follow", Kind::Bool).default("false").doc("When `dest` is a link, write its target."),
    opt("local_follow", Kind::Bool).default("true").doc("Follow links in `src` on this machine."),
    opt("decrypt", Kind::Bool).default("true").doc("Decrypt a vault-encrypted `src`."),
    UNSAFE_WRITES_ARG,
    opt("directory_mode", Kind::Any).doc("The mode of folders a recursive copy creates."),
];
const TEMPLATE_SPEC: &[ArgSpec] = &[
    req("src", Kind::Str).doc("The Jinja2 template, found in the role's `templates/`, the playbook's, or the project's."),
    req("dest", Kind::Str).doc("Where on the host to write the rendered file."),
    MODE_ARG,
    OWNER_ARG,
    GROUP_ARG,
    VALIDATE_ARG,
    opt("validate_in_place", Kind::Bool).default("false").doc("Run `validate` on the file in its place."),
    BACKUP_ARG,
    opt("force", Kind::Bool).default("true").doc("Replace a file whose content differs (`false`: only create a missing one)."),
    opt("follow", Kind::Bool).default("false").doc("When `dest` is a link, write its target."),
    opt("newline_sequence", Kind::Str).default("\\n").doc("The line ending of the rendered file."),
    opt("output_encoding", Kind::Str).default("utf-8").doc("The encoding of the rendered file."),
    opt("trim_blocks", Kind::Bool).default("true").doc("Remove the first newline after a block tag."),
    opt("lstrip_blocks", Kind::Bool).default("false").doc("Strip spaces and tabs before a block tag on its line."),
    UNSAFE_WRITES_ARG,
];

fn spec_of(ctx: &StepCtx<'_>, a: Args, content: Vec<u8>) -> WriteSpec {
    let backup = (a.backup.unwrap_or(false) && !ctx.check).then(|| crate::modules::support::write::backup_name(&a.dest));
    WriteSpec { dest: a.dest, content, mode: a.mode, owner: a.owner, group: a.group, validate: a.validate, validate_in_place: a.validate_in_place.unwrap_or(false), backup }
}

/// `force: false` and the destination exists: nothing to do (Ansible's rule for copy and template).
async fn kept_by_force(ctx: &StepCtx<'_>, a: &Args) -> Result<bool, StepError> {
    Ok(a.force == Some(false) && ctx.run(crate::transport::Cmd::argv(["test", "-e", &a.dest])).await?.rc == 0)
}

fn local_src(ctx: &StepCtx<'_>, src: &str) -> Result<std::path::PathBuf, StepError> {
    find_src(src, ctx.task, ctx.playbook_dir, ctx.project_root).ok_or_else(|| {
        StepError::Input(crate::error::SourceError::new(ctx.task.arg_span("src"), format!("source file '{src}' not found")).help("looked in the role's templates/ and files/, the playbook's folder and the project's templates/"))
    })
}

#[async_trait]
impl Module for Copy {
    fn name(&self) -> &'static str {
        "copy"
    }
    fn doc(&self) -> &'static str {
        Self::DOCS
    }
    fn spec(&self) -> &'static [ArgSpec] {
        COPY_SPEC
    }
    async fn plan(&self, ctx: &StepCtx<'_>, args: &Json) -> Result<Plan, StepError> {
        let mut a: Args = typed("copy", args)?;
        // A folder on the host (remote_src): ansible-core's copy_directory, there.
        if let (None, Some(src), true) = (&a.content, a.src.clone(), a.remote_src.unwrap_or(false)) {
            if ctx.run(crate::transport::Cmd::argv(["test", "-d", &src])).await?.rc == 0 {
                return plan_remote_tree(ctx, &a, &src).await;
            }
        }
        // A local folder: its tree, file by file.
        if let (None, Some(src), false) = (&a.content, a.src.clone(), a.remote_src.unwrap_or(false)) {
            if let Some(dir) = crate::modules::find_src_kind(&src, ctx.task, ctx.playbook_dir, ctx.project_root, true).filter(|p| p.is_dir()) {
                return plan_tree(ctx, &a, &dir, &src).await;
            }
        }
        // As Ansible: a file copied to `dir/` (or to a folder that exists) goes into it, and a
        // `dir/` that does not exist yet is made.
        let mut mkdir = None;
        if let (None, Some(src)) = (&a.content, &a.src) {
            let base = std::path::Path::new(src).file_name().map(|b| b.to_string_lossy().into_owned()).unwrap_or_default();
            let dir = a.dest.trim_end_matches('/').to_string();
            let is_dir = ctx.run(crate::transport::Cmd::argv(["test", "-d", &dir])).await?.rc == 0;
            if a.dest.ends_with('/') || is_dir {
                if !is_dir {
                    mkdir = Some(dir.clone());
                }
                a.dest = format!("{dir}/{base}");
            }
        }
        let _ = (a.follow, a.local_follow, a.decrypt, a.unsafe_writes);
        if kept_by_force(ctx, &a).await? {
            return Ok(Plan::ok());
        }
        let content = match (&a.content, &a.src) {
            (Some(Json::String(s)), _) => s.clone().into_bytes(),
            (None, Some(src)) if a.remote_src.unwrap_or(false) => match ctx.stat_read(src).await? {
                (Some(st), Some(bytes)) if st.kind == crate::facts::FileKind::File => bytes,
                (Some(st), _) if st.kind == crate::facts::FileKind::Dir => {
                    return Err(StepError::failed(format!("copy: remote_src {src} is a directory; recover copies single files with remote_src")));
                }
                (Some(_), _) => return Err(StepError::failed(format!("copy: remote_src {src} cannot be read as the task's user"))),
                (None, _) => return Err(StepError::failed(format!("Source {src} not found"))),
            },
            (Some(other), _) => crate::template::pyjson::dumps(other, None, false, false).into_bytes(),
            (None, Some(src)) => {
                let p = local_src(ctx, src)?;
                crate::vault::read_file(&p).map_err(|e| StepError::failed(format!("copy: {e}")))?
            }
            (None, None) => return Err(StepError::failed("copy needs `content` or `src`")),
        };
        let remote = a.remote_src.unwrap_or(false);
        let mut plan = plan_write(ctx, spec_of(ctx, a, content)).await?;
        if remote {
            // ansible-core shows no diff for a copy made on the host.
            plan.diff = None;
        }
        if let Some(d) = mkdir {
            plan.changes.insert(0, format!("create folder {d}"));
            plan.commands.insert(0, crate::transport::Cmd::argv(["mkdir", "-p", "--", &d]));
        }
        Ok(plan)
    }
}

#[async_trait]
impl Module for Template {
    fn name(&self) -> &'static str {
        "template"
    }
    fn doc(&self) -> &'static str {
        Self::DOCS
    }
    fn spec(&self) -> &'static [ArgSpec] {
        TEMPLATE_SPEC
    }
    async fn plan(&self, ctx: &StepCtx<'_>, args: &Json) -> Result<Plan, StepError> {
        let a: Args = typed("template", args)?;
        if let Some(e) = a.output_encoding.as_deref().filter(|e| !matches!(e.to_lowercase().replace('_', "-").as_str(), "utf-8" | "utf8")) {
            return Err(StepError::failed(format!("template: output_encoding {e:?} is not supported by recover (utf-8 only)")));
        }
        if a.trim_blocks == Some(false) || a.lstrip_blocks == Some(true) {
            return Err(StepError::failed("template: trim_blocks: false and lstrip_blocks: true are not supported by recover (it renders with Ansible's defaults)"));
        }
        if kept_by_force(ctx, &a).await? {
            return Ok(Plan::ok());
        }
        let src = a.src.clone().unwrap_or_default();
        let path = local_src(ctx, &src)?;
        let text = crate::vault::read_file(&path).map_err(|e| StepError::failed(format!("template: {e}")))?;
        let text = String::from_utf8(text).map_err(|_| StepError::failed(format!("template: {} is not UTF-8 text", path.display())))?;
        let mut search = Vec::new();
        if let Some(r) = &ctx.task.role_dir {
            search.extend([r.join("templates"), r.clone()]);
        }
        search.extend([ctx.playbook_dir.join("templates"), ctx.playbook_dir.to_path_buf()]);
        let file = crate::template::TemplateFile { src: &src, path: &path, dest: Some(&a.dest) };
        let rendered = ctx.templates.render_template(&text, ctx.vars, &file, &search)?;
        let rendered = match a.newline_sequence.as_deref() {
            None | Some("\n") => rendered,
            Some(seq @ ("\r\n" | "\r")) => rendered.replace('\n', seq),
            Some(other) => return Err(StepError::failed(format!("template: newline_sequence must be one of \\n, \\r, \\r\\n, got {other:?}"))),
        };
        plan_write(ctx, spec_of(ctx, a, rendered.into_bytes())).await
    }
}

/// The files and folders under `dir` (links followed), relative, folders first in walk order.
fn local_tree(dir: &std::path::Path, rel: &str, out: &mut Vec<(String, Option<Vec<u8>>)>) -> Result<(), StepError> {
    let mut names: Vec<_> = std::fs::read_dir(dir).map_err(|e| StepError::failed(format!("copy: {}: {e}", dir.display())))?.flatten().collect();
    names.sort_by_key(|e| e.file_name());
    for e in names {
        let name = e.file_name().to_string_lossy().into_owned();
        let r = if rel.is_empty() { name.clone() } else { format!("{rel}/{name}") };
        let p = e.path();
        if p.is_dir() {
            out.push((r.clone(), None));
            local_tree(&p, &r, out)?;
        } else if p.is_file() {
            out.push((r, Some(crate::vault::read_file(&p).map_err(|e| StepError::failed(format!("copy: {e}")))?)));
        }
    }
    Ok(())
}

/// `copy` of a local folder, as ansible-core's action does it: `src/` copies what is in it,
/// `src` the folder itself; every file written when its content (or `mode`, owner, group)
/// differs, the folders made that are missing (`directory_mode`, owner and group). No diff is
/// shown, as with ansible-core; overwriting files that exist is an overwrite for the safety
/// engine (each file backed up).
async fn plan_tree(ctx: &StepCtx<'_>, a: &Args, dir: &std::path::Path, src: &str) -> Result<Plan, StepError> {
    use sha2::Digest;
    use crate::transport::{quote, Cmd};
    let base = if src.ends_with('/') {
        a.dest.trim_end_matches('/').to_string()
    } else {
        format!("{}/{}", a.dest.trim_end_matches('/'), dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default())
    };
    let mut entries = Vec::new();
    local_tree(dir, "", &mut entries)?;
    let b = quote::quote(&base);
    let out = ctx.run(Cmd::shell(format!("find {b} -printf '%y\\t%m\\t%u\\t%g\\t%P\\n' 2>/dev/null; echo '--'; find {b} -type f -exec sha256sum {{}} + 2>/dev/null; true"))).await?;
    let text = out.stdout_str();
    let (listing, sums) = text.split_once("--\n").unwrap_or((&text, ""));
    let mut remote: std::collections::HashMap<String, (String, u32, String, String)> = std::collections::HashMap::new();
    for l in listing.lines() {
        let f: Vec<&str> = l.splitn(5, '\t').collect();
        if f.len() == 5 {
            remote.insert(f[4].to_string(), (f[0].to_string(), u32::from_str_radix(f[1], 8).unwrap_or(0), f[2].to_string(), f[3].to_string()));
        }
    }
    let mut sha: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    let prefix = format!("{base}/");
    for l in sums.lines() {
        if let Some((s, p)) = l.split_once("  ") {
            sha.insert(p.strip_prefix(&prefix).unwrap_or(p).to_string(), s.to_string());
        }
    }
    let mut plan = Plan::ok();
    plan.result.insert("dest".into(), serde_json::json!(a.dest));
    plan.result.insert("src".into(), serde_json::json!(src));
    let who = match (&a.owner, &a.group) {
        (None, None) => None,
        (o, g) => Some(format!("{}:{}", o.clone().unwrap_or_default(), g.clone().unwrap_or_default()).trim_end_matches(':').to_string()),
    };
    let mut dirs = vec![String::new()];
    dirs.extend(entries.iter().filter(|(_, c)| c.is_none()).map(|(r, _)| r.clone()));
    // The folder itself copied into `dest`: a missing `dest` is made first, with the same mode.
    let dest = a.dest.trim_end_matches('/').to_string();
    let make_dir = |plan: &mut Plan, path: &str| {
        let q = quote::quote(path);
        let mut cmd = format!("mkdir -p -- {q}");
        if let Some(m) = a.directory_mode {
            cmd.push_str(&format!(" && chmod {m:o} -- {q}"));
        }
        if let Some(w) = &who {
            cmd.push_str(&format!(" && chown {} -- {q}", quote::quote(w)));
        }
        plan.changes.push(format!("create folder {path}"));
        plan.commands.push(Cmd::shell(cmd));
    };
    if dest != base && ctx.run(Cmd::argv(["test", "-d", &dest])).await?.rc != 0 {
        make_dir(&mut plan, &dest);
    }
    for d in &dirs {
        let path = if d.is_empty() { base.clone() } else { format!("{base}/{d}") };
        match remote.get(d.as_str()) {
            Some((t, ..)) if t == "d" => {}
            Some(_) => return Err(StepError::failed(format!("copy: {path} exists and is not a directory"))),
            None => make_dir(&mut plan, &path),
        }
    }
    for (rel, content) in entries.iter().filter_map(|(r, c)| c.as_ref().map(|c| (r, c))) {
        let path = format!("{base}/{rel}");
        let local_sha = format!("{:x}", sha2::Sha256::digest(content));
        let attrs_differ = remote.get(rel.as_str()).is_some_and(|(_, m, u, g)| a.mode.is_some_and(|x| x != *m) || a.owner.as_ref().is_some_and(|o| o != u) || a.group.as_ref().is_some_and(|x| x != g));
        let present = sha.get(rel.as_str()) == Some(&local_sha);
        if present && !attrs_differ {
            continue;
        }
        if present && a.force == Some(false) {
            continue;
        }
        if remote.contains_key(rel.as_str()) && a.force == Some(false) {
            continue;
        }
        let current = if remote.contains_key(rel.as_str()) { ctx.stat_read(&path).await? } else { (None, None) };
        let backup = (a.backup.unwrap_or(false) && !ctx.check && current.1.is_some()).then(|| crate::modules::support::write::backup_name(&path));
        let spec = WriteSpec { dest: path.clone(), content: content.clone(), mode: a.mode, owner: a.owner.clone(), group: a.group.clone(), validate: a.validate.clone(), validate_in_place: false, backup };
        let w = crate::modules::support::write::plan_write_over(ctx, spec, current)?;
        plan.changes.extend(w.changes);
        plan.commands.extend(w.commands);
        match (&mut plan.destructive, w.destructive) {
            (Some(d), Some(x)) => {
                d.paths.extend(x.paths);
                d.reason = format!("overwrites {} files under {base}", d.paths.len());
            }
            (d @ None, x) => *d = x,
            _ => {}
        }
    }
    // ansible-core shows no diff for a folder's copy (its action keeps none of the files').
    Ok(plan)
}

/// ansible-core's `copy_directory` as a script on the host: with `DRY=1` it prints what it
/// would do (`copy`, `overwrite PATH`, `chown`, `chmod`), with `DRY=0` it does it. A new
/// destination is the whole tree (modes and times kept); else the files that are missing or
/// differ are copied (content and mode), the folders that are missing copied whole; `owner`
/// and `group` go over the tree, `mode` on `dest` itself.
fn remote_tree_script(src: &str, base: &str, dest: &str, owner: &Option<String>, group: &Option<String>, mode: Option<u32>) -> String {
    use crate::transport::quote::quote;
    let who = match (owner, group) {
        (None, None) => String::new(),
        (o, g) => format!("{}:{}", o.clone().unwrap_or_default(), g.clone().unwrap_or_default()).trim_end_matches(':').to_string(),
    };
    let ownership = if who.is_empty() {
        String::new()
    } else {
        let mut test = Vec::new();
        if let Some(o) = owner {
            test.push(format!("! -user {}", quote(o)));
        }
        if let Some(g) = group {
            test.push(format!("! -group {}", quote(g)));
        }
        format!("if [ -n \"$(find \"$base\" \\( {} \\) -print -quit 2>/dev/null)\" ]; then act chown \"chown -R {} -- \\\"$base\\\"\"; fi; ", test.join(" -o "), quote(&who))
    };
    let chmod = match mode {
        Some(m) => format!("if [ \"$(stat -c %a -- \"$dest\" 2>/dev/null)\" != {m:o} ]; then act chmod \"chmod {m:o} -- \\\"$dest\\\"\"; fi"),
        None => ":".into(),
    };
    format!(
        "src={}; base={}; dest={}; act() {{ echo \"$1\"; [ \"$DRY\" = 1 ] || eval \"$2\" || exit 1; }}; \
         if [ ! -e \"$base\" ]; then act copy 'mkdir -p -- \"$(dirname -- \"$base\")\" && cp -rL --preserve=mode,timestamps -- \"$src\" \"$base\"'; \
         else skip=; (cd \"$src\" && find -L . -mindepth 1 \\( -type d -printf 'd %P\\n' \\) -o \\( -type f -printf 'f %P\\n' \\)) > \"${{TMPDIR:-/tmp}}/.recover-tree.$$\"; \
         while read -r t p; do \
           if [ -n \"$skip\" ]; then case \"$p\" in \"$skip\"/*) continue;; esac; fi; \
           if [ \"$t\" = d ]; then [ -d \"$base/$p\" ] || {{ skip=$p; act copy 'cp -rL --preserve=mode,timestamps -- \"$src/$p\" \"$base/$p\"'; }}; \
           elif [ ! -e \"$base/$p\" ]; then act copy 'cp -L --preserve=mode -- \"$src/$p\" \"$base/$p\"'; \
           elif ! cmp -s -- \"$src/$p\" \"$base/$p\"; then act \"overwrite $base/$p\" 'cp -L --preserve=mode -- \"$src/$p\" \"$base/$p\"'; fi; \
         done < \"${{TMPDIR:-/tmp}}/.recover-tree.$$\"; rm -f \"${{TMPDIR:-/tmp}}/.recover-tree.$$\"; fi; \
         {ownership}{chmod}",
        quote(src),
        quote(base),
        quote(dest)
    )
}

async fn plan_remote_tree(ctx: &StepCtx<'_>, a: &Args, src: &str) -> Result<Plan, StepError> {
    use crate::transport::Cmd;
    let dest = a.dest.trim_end_matches('/').to_string();
    let base = if src.ends_with('/') { dest.clone() } else { format!("{dest}/{}", src.trim_end_matches('/').rsplit('/').next().unwrap_or(src)) };
    let script = remote_tree_script(src.trim_end_matches('/'), &base, &dest, &a.owner, &a.group, a.mode);
    let out = ctx.run(Cmd::shell(format!("DRY=1; {script}"))).await?;
    if out.rc != 0 {
        return Err(StepError::failed(crate::modules::command_failure(ctx.host, &format!("copy {src} {dest} (plan)"), &out)));
    }
    let acts: Vec<String> = out.stdout_str().lines().map(str::to_string).collect();
    let mut plan = Plan::ok();
    plan.result.insert("dest".into(), serde_json::json!(a.dest));
    plan.result.insert("src".into(), serde_json::json!(src));
    if acts.is_empty() {
        return Ok(plan);
    }
    let over: Vec<String> = acts.iter().filter_map(|l| l.strip_prefix("overwrite ").map(str::to_string)).collect();
    plan.changes.push(format!("copy {src} to {base} on the host ({} steps)", acts.len()));
    plan.commands.push(Cmd::shell(format!("DRY=0; {script}")).label(format!("copy {src} {dest} on the host")));
    if !over.is_empty() {
        plan.destructive = Some(crate::safety::Destructive { reason: format!("overwrites {} files under {base}", over.len()), paths: over, ..Default::default() });
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::remote_tree_script;

    fn sh(script: &str) -> (i32, String) {
        let out = std::process::Command::new("sh").args(["-c", script]).output().unwrap();
        (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
    }

    #[test]
    fn the_remote_tree_copy_says_what_it_would_do_then_does_it_and_then_nothing() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().display().to_string();
        assert_eq!(sh(&format!("mkdir -p '{d}/src/sub' && echo one > '{d}/src/a' && echo two > '{d}/src/sub/b' && chmod 600 '{d}/src/a'")).0, 0);
        let script = remote_tree_script(&format!("{d}/src"), &format!("{d}/dest/src"), &format!("{d}/dest"), &None, &None, None);
        let (rc, dry) = sh(&format!("DRY=1; {script}"));
        assert_eq!((rc, dry.as_str()), (0, "copy\n"));
        assert!(!t.path().join("dest").exists(), "a dry run copied");
        assert_eq!(sh(&format!("DRY=0; {script}")).0, 0);
        assert_eq!(std::fs::read_to_string(t.path().join("dest/src/sub/b")).unwrap(), "two\n");
        assert_eq!(sh(&format!("DRY=1; {script}")), (0, String::new()));
        // One file changed, one added, a folder added: each is named.
        sh(&format!("echo changed > '{d}/dest/src/a'; echo three > '{d}/src/c'; mkdir '{d}/src/new'; echo four > '{d}/src/new/d'"));
        let (_, dry) = sh(&format!("DRY=1; {script}"));
        let mut lines: Vec<&str> = dry.lines().collect();
        lines.sort();
        assert_eq!(lines, ["copy", "copy", &format!("overwrite {d}/dest/src/a") as &str]);
        assert_eq!(sh(&format!("DRY=0; {script}")).0, 0);
        assert_eq!(std::fs::read_to_string(t.path().join("dest/src/a")).unwrap(), "one\n");
        assert_eq!(std::fs::read_to_string(t.path().join("dest/src/new/d")).unwrap(), "four\n");
        assert_eq!(sh(&format!("DRY=1; {script}")), (0, String::new()));
        // `mode` goes on dest itself.
        let with_mode = remote_tree_script(&format!("{d}/src"), &format!("{d}/dest/src"), &format!("{d}/dest"), &None, &None, Some(0o700));
        assert_eq!(sh(&format!("DRY=1; {with_mode}")).1, "chmod\n");
    }
}
