//! `unarchive`: a tar (plain, gz, bz2, xz, zst) or zip archive, from the controller or
//! (`remote_src`) on the host, unpacked into a folder that exists, as ansible-core unpacks it:
//! already unpacked when GNU tar's `--diff` finds nothing that matters (content, size, mtime,
//! a missing file; the mode unless `mode:` is given), or for a zip when every file has the same
//! content and mode; `creates`, `exclude`/`include`, `keep_newer`, `extra_opts`, `list_files`.
//! Unpacking over files that differ is an overwrite for the safety engine (the folder's files
//! named by the archive are what the backup covers).

use async_trait::async_trait;
use documented::Documented;
use serde::Deserialize;
use serde_json::{json, Value as Json};

use crate::modules::{de, find_src, opt, req, typed, ArgSpec, Kind, Module, Outcome, Plan, StepCtx, StepError};
use crate::transport::{quote, Cmd};

/// `unarchive`: a tar or zip archive (from this machine, or on the host with `remote_src`) unpacked
/// into a folder on the host, when its files differ.
///
/// Returns: `dest`, `src`, `handler`, `extract_results`; `files` with `list_files`.
///
/// Check mode: compares the archive's members with the folder and reports whether it would unpack;
/// unpacks nothing.
#[derive(Documented)]
pub struct Unarchive;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    src: String,
    dest: String,
    #[serde(default, deserialize_with = "de::bool_loose")]
    remote_src: Option<bool>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    copy: Option<bool>,
    creates: Option<String>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    list_files: Option<bool>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    keep_newer: Option<bool>,
    #[serde(default, deserialize_with = "de::list_loose")]
    exclude: Vec<String>,
    #[serde(default, deserialize_with = "de::list_loose")]
    include: Vec<String>,
    #[serde(default, deserialize_with = "de::list_loose")]
    extra_opts: Vec<String>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    validate_certs: Option<bool>,
    #[serde(default, deserialize_with = "de::u64_loose")]
    io_buffer_size: Option<u64>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    decrypt: Option<bool>,
    #[serde(default, deserialize_with = "de::mode")]
    mode: Option<u32>,
    owner: Option<String>,
    group: Option<String>,
}

const SPEC: &[ArgSpec] = &[
    req("src", Kind::Str).doc("The archive (on this machine, or on the host with `remote_src`)."),
    req("dest", Kind::Str).doc("The folder on the host to unpack into."),
    opt("remote_src", Kind::Bool).default("false").doc("The archive is on the host."),
    opt("copy", Kind::Bool).doc("Old form of `remote_src` (inverted)."),
    opt("creates", Kind::Str).doc("A path on the host: when it exists, nothing is unpacked."),
    opt("list_files", Kind::Bool).default("false").doc("Return the archive's file names."),
    opt("keep_newer", Kind::Bool).default("false").doc("Do not replace files newer than the archive's."),
    opt("exclude", Kind::List).doc("Archive members to leave out."),
    opt("include", Kind::List).doc("Only these archive members."),
    opt("extra_opts", Kind::List).doc("Extra options for the unpacking program."),
    opt("validate_certs", Kind::Bool).default("true").doc("Check the certificate of an `src` URL."),
    opt("io_buffer_size", Kind::Int).default("65536").doc("The buffer size for reading the archive."),
    opt("decrypt", Kind::Bool).default("true").doc("Decrypt a vault-encrypted archive."),
    opt("mode", Kind::Any).doc("The mode of the unpacked files."),
    opt("owner", Kind::Str).doc("The owner of the unpacked files."),
    opt("group", Kind::Str).doc("The group of the unpacked files."),
];

/// Lines of `tar --diff` that mean "not unpacked yet" (ansible-core's list).
fn tar_differs(out: &str, mode_given: bool, owner_given: bool, group_given: bool, root: bool) -> Vec<String> {
    out.lines()
        .filter(|l| !l.contains(": : Warning: Cannot stat: No such file or directory"))
        .filter(|l| {
            (root && !owner_given && l.contains(": Uid differs"))
                || (root && !group_given && l.contains(": Gid differs"))
                || (!mode_given && l.contains(": Mode differs"))
                || [": Mod time differs", ": No such file or directory", ": Invalid owner", ": Invalid group", ": Symlink differs", ": Contents differ", ": Size differs"].iter().any(|p| l.contains(p))
        })
        .map(str::to_string)
        .collect()
}

impl Args {
    fn tar_common(&self, flag: &str) -> String {
        let mut c = String::new();
        if !flag.is_empty() {
            c.push_str(&format!(" {flag}"));
        }
        if !self.extra_opts.is_empty() {
            c.push_str(&format!(" --show-transformed-names {}", quote::join(&self.extra_opts)));
        }
        c
    }
    fn tar_filters(&self) -> (String, String) {
        let ex: String = self.exclude.iter().map(|e| format!(" {}", quote::quote(&format!("--exclude={e}")))).collect();
        (ex, if self.include.is_empty() { String::new() } else { format!(" {}", quote::join(&self.include)) })
    }
}

#[async_trait]
impl Module for Unarchive {
    fn name(&self) -> &'static str {
        "unarchive"
    }
    fn doc(&self) -> &'static str {
        Self::DOCS
    }
    fn spec(&self) -> &'static [ArgSpec] {
        SPEC
    }
    async fn plan(&self, ctx: &StepCtx<'_>, args: &Json) -> Result<Plan, StepError> {
        let a: Args = typed("unarchive", args)?;
        let _ = (a.validate_certs, a.io_buffer_size, a.decrypt);
        if !a.include.is_empty() && !a.exclude.is_empty() {
            return Err(StepError::failed("parameters are mutually exclusive: include|exclude"));
        }
        let remote = a.remote_src.unwrap_or(false) || a.copy == Some(false);
        if remote && a.src.contains("://") {
            return Err(StepError::failed("unarchive: a URL src is not supported by recover; download it with get_url, then unarchive it with remote_src"));
        }
        if let Some(c) = &a.creates {
            if ctx.run(Cmd::argv(["test", "-e", c])).await?.ok() {
                return Ok(Plan { skipped: Some(format!("skipped, since {c} exists")), ..Plan::ok() });
            }
        }
        // The archive on the host: its own path, or ours sent on stdin into a temp file.
        let (body, src_ref) = if remote {
            (None, quote::quote(&a.src))
        } else {
            let p = find_src(&a.src, ctx.task, ctx.playbook_dir, ctx.project_root).ok_or_else(|| StepError::failed(format!("Could not find or access '{}' on the Ansible Controller.", a.src)))?;
            (Some(crate::vault::read_file(&p).map_err(|e| StepError::failed(format!("unarchive: {e}")))?), "\"$t\"".to_string())
        };
        let wrap = |inner: &str| match &body {
            Some(_) => format!("t=$(mktemp) || exit 1; cat > \"$t\"; {inner}; rc=$?; rm -f \"$t\"; exit $rc"),
            None => inner.to_string(),
        };
        let d = quote::quote(&a.dest);
        let probe = wrap(&format!(
            "s={src_ref}; if [ ! -e \"$s\" ]; then echo NOSRC; exit 0; fi; if [ ! -s \"$s\" ]; then echo EMPTY; exit 0; fi; if [ ! -d {d} ]; then echo NODEST; exit 0; fi; \
             if command -v unzip >/dev/null 2>&1 && unzip -Z -1 \"$s\" >/dev/null 2>&1; then echo KIND zip; unzip -Z -1 \"$s\"; exit 0; fi; \
             for f in -z '' -j -J --zstd; do if tar $f -t -f \"$s\" >/dev/null 2>&1; then echo \"KIND tar$f\"; tar $f -t -f \"$s\"; exit 0; fi; done; echo UNKNOWN"
        ));
        let mut probe_cmd = Cmd::shell(probe);
        if let Some(b) = &body {
            probe_cmd = probe_cmd.stdin(b.clone());
        }
        let out = ctx.run(probe_cmd).await?;
        let text = out.stdout_str();
        let mut lines = text.lines();
        let head = lines.next().unwrap_or("UNKNOWN").to_string();
        match head.as_str() {
            "NOSRC" => return Err(StepError::failed(format!("Source '{}' does not exist", a.src))),
            "EMPTY" => return Err(StepError::failed(format!("Invalid archive '{}', the file is 0 bytes", a.src))),
            "NODEST" => return Err(StepError::failed(format!("Destination '{}' is not a directory", a.dest))),
            "UNKNOWN" => return Err(StepError::failed(format!("Failed to find handler for \"{}\". Make sure the required command to extract the file is installed.", a.src))),
            _ => {}
        }
        let kind = head.trim_start_matches("KIND ").to_string();
        if ctx.check && kind != "zip" {
            return Ok(Plan { skipped: Some("remote module (unarchive) does not support check mode when using gtar".into()), ..Plan::ok() });
        }
        let files: Vec<String> = lines.map(str::to_string).filter(|f| !f.is_empty()).collect();
        let (ex, inc) = a.tar_filters();
        let root = ctx.become_user.as_deref() == Some("root") || ctx.vars.get_attr("ansible_user").ok().is_some_and(|u| u.as_str() == Some("root"));
        let (handler, differs, extract) = if kind == "zip" {
            // Unpacked already when every file in it has the same content (and mode) here.
            let xs: String = a.exclude.iter().map(|e| format!(" -x {}", quote::quote(e))).collect();
            let cmp = wrap(&format!(
                "s={src_ref}; w=$(mktemp -d) || exit 1; unzip -q -o \"$s\" -d \"$w\"{xs} >/dev/null 2>&1; cd \"$w\" && find . -mindepth 1 \\( -type f -o -type l \\) -print | while read -r f; do \
                 if [ ! -e {d}/\"$f\" ] && [ ! -L {d}/\"$f\" ]; then echo \"$f: No such file or directory\"; elif ! cmp -s \"$f\" {d}/\"$f\"; then echo \"$f: Contents differ\"; \
                 elif [ \"$(stat -c %a \"$f\")\" != \"$(stat -c %a {d}/\"$f\")\" ]; then echo \"$f: Mode differs\"; fi; done; cd /; rm -rf \"$w\""
            ));
            let mut c = Cmd::shell(cmp);
            if let Some(b) = &body {
                c = c.stdin(b.clone());
            }
            let o = ctx.run(c).await?;
            let diffs = tar_differs(&o.stdout_str(), a.mode.is_some(), a.owner.is_some(), a.group.is_some(), root);
            ("ZipArchive", diffs, wrap(&format!("s={src_ref}; unzip -o \"$s\" -d {d}{xs}")))
        } else {
            let flag = kind.trim_start_matches("tar").to_string();
            let mut opts = a.tar_common(&flag);
            if a.keep_newer.unwrap_or(false) {
                opts.push_str(" --keep-newer-files");
            }
            let who: String = [a.owner.as_ref().map(|o| format!(" --owner={}", quote::quote(o))), a.group.as_ref().map(|g| format!(" --group={}", quote::quote(g)))].into_iter().flatten().collect();
            let diff = wrap(&format!("cd {d} && LANG=C LC_ALL=C tar --diff -C {d}{opts}{who}{ex} -f {src_ref}{inc} 2>&1; true"));
            let mut c = Cmd::shell(diff);
            if let Some(b) = &body {
                c = c.stdin(b.clone());
            }
            let o = ctx.run(c).await?;
            let diffs = tar_differs(&o.stdout_str(), a.mode.is_some(), a.owner.is_some(), a.group.is_some(), root);
            let handler = match flag.as_str() { "-z" => "TgzArchive", "-j" => "TarBzipArchive", "-J" => "TarXzArchive", "--zstd" => "TarZstdArchive", _ => "TarArchive" };
            (handler, diffs, wrap(&format!("cd {d} && LANG=C LC_ALL=C tar --extract -C {d}{opts}{who}{ex} -f {src_ref}{inc}")))
        };
        let mut plan = Plan::ok();
        plan.result.insert("dest".into(), json!(a.dest));
        plan.result.insert("src".into(), json!(a.src));
        plan.result.insert("handler".into(), json!(handler));
        if a.list_files.unwrap_or(false) {
            plan.result.insert("files".into(), json!(files));
        }
        // Attributes asked for: each file of the archive and each top folder gets them.
        let mut targets: Vec<String> = files.iter().map(|f| f.trim_end_matches('/').to_string()).filter(|f| !f.is_empty()).collect();
        for f in files.iter().filter_map(|f| f.split_once('/').map(|(t, _)| t.to_string())) {
            if !targets.contains(&f) {
                targets.push(f);
            }
        }
        let attrs = if a.mode.is_some() || a.owner.is_some() || a.group.is_some() {
            let q: Vec<String> = targets.iter().map(|t| quote::quote(&format!("{}/{t}", a.dest.trim_end_matches('/')))).collect();
            let mut s = String::new();
            if let Some(m) = a.mode {
                s.push_str(&format!("for p in {}; do if [ \"$(stat -c %a \"$p\" 2>/dev/null)\" != \"{m:o}\" ]; then chmod {m:o} \"$p\" && echo changed; fi; done; ", q.join(" ")));
            }
            if a.owner.is_some() || a.group.is_some() {
                let who = format!("{}:{}", a.owner.clone().unwrap_or_default(), a.group.clone().unwrap_or_default());
                let who = who.trim_end_matches(':').to_string();
                s.push_str(&format!("for p in {}; do b=$(stat -c %U:%G \"$p\"); chown -h {} \"$p\"; [ \"$(stat -c %U:%G \"$p\")\" = \"$b\" ] || echo changed; done; ", q.join(" "), quote::quote(&who)));
            }
            Some(s)
        } else {
            None
        };
        if !differs.is_empty() {
            plan.changes.push(format!("unpack {} into {} ({} entries)", a.src, a.dest, files.len()));
            let mut c = Cmd::shell(extract).label(format!("unpack {} into {}", a.src, a.dest));
            if let Some(b) = &body {
                c = c.stdin(b.clone());
            }
            plan.commands.push(c);
            // Files the archive would overwrite (those there that differ) are what the backup covers.
            let over: Vec<String> = differs.iter().filter(|l| !l.contains("No such file")).filter_map(|l| l.split(": ").next()).map(|f| format!("{}/{}", a.dest.trim_end_matches('/'), f.trim_start_matches("./"))).collect();
            if !over.is_empty() {
                plan.destructive = Some(crate::safety::Destructive { reason: format!("unpacking {} overwrites files in {}", a.src, a.dest), paths: over, ..Default::default() });
            }
        } else if let Some(s) = &attrs {
            // Nothing to unpack: are the attributes right already?
            let check: String = s.replace("chmod ", "true ").replace("chown -h ", "true ");
            let probe = ctx.run(Cmd::shell(check)).await?;
            if a.mode.is_some() && probe.stdout_str().contains("changed") {
                plan.changes.push(format!("set the mode of the files of {} in {}", a.src, a.dest));
            }
        }
        if let Some(s) = attrs.filter(|_| plan.changed()) {
            plan.commands.push(Cmd::shell(s));
        }
        Ok(plan)
    }
    async fn apply(&self, ctx: &StepCtx<'_>, plan: Plan) -> Result<Outcome, StepError> {
        let changed = plan.changed();
        let mut result = plan.result;
        for cmd in plan.commands {
            let out = ctx.run(cmd).await?;
            if out.rc != 0 {
                result.insert("extract_results".into(), json!({"rc": out.rc, "out": out.stdout_str(), "err": out.stderr_str()}));
                let (src, dest) = (result["src"].as_str().unwrap_or_default().to_string(), result["dest"].as_str().unwrap_or_default().to_string());
                return Err(StepError::Failed { msg: format!("failed to unpack {src} to {dest}"), result: Json::Object(result) });
            }
            result.insert("extract_results".into(), json!({"rc": 0, "out": out.stdout_str(), "err": out.stderr_str()}));
        }
        Ok(Outcome { changed, result })
    }
}

#[cfg(test)]
mod tests {
    use super::tar_differs;

    #[test]
    fn only_the_differences_ansible_core_counts() {
        let out = "a.txt: Mod time differs\nb.txt: Mode differs\nc.txt: Uid differs\n";
        assert_eq!(tar_differs(out, false, false, false, false).len(), 2);
        assert_eq!(tar_differs(out, true, false, false, false).len(), 1);
        assert_eq!(tar_differs(out, true, false, false, true).len(), 2);
        assert!(tar_differs("", false, false, false, false).is_empty());
    }
}
