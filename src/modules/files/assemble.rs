//! `assemble`: one file made of the fragments of a folder (on the host, or with
//! `remote_src: false` on the controller), in name order, with an optional `delimiter`
//! between them and a `regexp` choosing them, as ansible-core joins them. Written through
//! [`crate::modules::write`]; replacing a file is an overwrite for the safety engine.

use async_trait::async_trait;
use documented::Documented;
use serde::Deserialize;
use serde_json::{json, Value as Json};

use crate::modules::support::write::{backup_name, plan_write_over, WriteSpec};
use crate::modules::{OWNER_ARG, GROUP_ARG, VALIDATE_ARG, BACKUP_ARG, UNSAFE_WRITES_ARG, de, opt, req, typed, ArgSpec, Kind, Module, Plan, StepCtx, StepError};
use crate::pyre;
use crate::transport::{quote, Cmd};

/// `assemble`: a file joined from a folder of fragments (in name order, with an optional
/// delimiter), written as `copy` writes.
///
/// Returns: `dest`, `src`, `checksum`, `msg`; `backup_file` with `backup: true`.
///
/// Check mode: joins the fragments and shows the diff; writes nothing.
#[derive(Documented)]
pub struct Assemble;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    src: String,
    dest: String,
    delimiter: Option<String>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    backup: Option<bool>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    remote_src: Option<bool>,
    regexp: Option<String>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    ignore_hidden: Option<bool>,
    validate: Option<String>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    decrypt: Option<bool>,
    #[serde(default, deserialize_with = "de::mode")]
    mode: Option<u32>,
    owner: Option<String>,
    group: Option<String>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    unsafe_writes: Option<bool>,
}

/// Python's `codecs.escape_decode` of the common escapes (`\n`, `\t`, `\\`, `\r`).
fn unescape(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if c == '\\' {
            match it.next() {
                Some('n') => out.push(b'\n'),
                Some('t') => out.push(b'\t'),
                Some('r') => out.push(b'\r'),
                Some('\\') => out.push(b'\\'),
                Some(o) => {
                    out.push(b'\\');
                    out.extend(o.to_string().as_bytes());
                }
                None => out.push(b'\\'),
            }
        } else {
            out.extend(c.to_string().as_bytes());
        }
    }
    out
}

/// The fragments joined: a newline after one that lacks it, the delimiter (and, as
/// ansible-core writes it, always a newline after the delimiter) between two.
pub fn join(fragments: &[Vec<u8>], delimiter: Option<&str>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut add_newline = false;
    for (i, f) in fragments.iter().enumerate() {
        if add_newline {
            out.push(b'\n');
        }
        if i > 0 {
            if let Some(d) = delimiter.filter(|d| !d.is_empty()) {
                out.extend(unescape(d));
                out.push(b'\n');
            }
        }
        out.extend(f);
        add_newline = !f.ends_with(b"\n");
    }
    out
}

#[async_trait]
impl Module for Assemble {
    fn name(&self) -> &'static str {
        "assemble"
    }
    fn doc(&self) -> &'static str {
        Self::DOCS
    }
    fn spec(&self) -> &'static [ArgSpec] {
        const S: &[ArgSpec] = &[
            req("src", Kind::Str).doc("The folder of fragments (on the host, or here with `remote_src: false`)."),
            req("dest", Kind::Str).doc("The file the fragments are joined into."),
            opt("delimiter", Kind::Str).doc("Text written between fragments."),
            BACKUP_ARG,
            opt("remote_src", Kind::Bool).default("true").doc("The fragments are on the host (`false`: on this machine)."),
            opt("regexp", Kind::Str).doc("Only fragments whose names match this regular expression."),
            opt("ignore_hidden", Kind::Bool).default("false").doc("Skip fragments whose names start with a dot."),
            VALIDATE_ARG,
            opt("decrypt", Kind::Bool).default("true").doc("Decrypt vault-encrypted fragments."),
            opt("mode", Kind::Any).doc("The file's mode (octal like `0644`, or symbolic like `u=rw,g=r`)."),
            OWNER_ARG,
            GROUP_ARG,
            UNSAFE_WRITES_ARG,
        ];
        S
    }
    async fn plan(&self, ctx: &StepCtx<'_>, args: &Json) -> Result<Plan, StepError> {
        let a: Args = typed("assemble", args)?;
        let _ = (a.decrypt, a.unsafe_writes);
        let re = a.regexp.as_deref().map(|r| pyre::compile(r).map_err(|e| StepError::failed(format!("Invalid Regexp ({e}) in \"{r}\"")))).transpose()?;
        if let Some(v) = a.validate.as_deref().filter(|v| !v.contains("%s")) {
            return Err(StepError::failed(format!("validate must contain %s: {v}")));
        }
        let keep = |name: &str| re.as_ref().is_none_or(|r| r.is_match(name.as_bytes())) && !(a.ignore_hidden.unwrap_or(false) && name.starts_with('.'));
        let mut fragments = Vec::new();
        if a.remote_src.unwrap_or(true) {
            let s = quote::quote(&a.src);
            let out = ctx.run(Cmd::shell(format!("if [ ! -e {s} ]; then echo MISSING; elif [ ! -d {s} ]; then echo NOTDIR; else find {s} -mindepth 1 -maxdepth 1 -printf '%y\\t%f\\0'; fi"))).await?;
            let text = out.stdout_str();
            if text.trim() == "MISSING" {
                return Err(StepError::failed(format!("Source ({}) does not exist", a.src)));
            }
            if text.trim() == "NOTDIR" {
                return Err(StepError::failed(format!("Source ({}) is not a directory", a.src)));
            }
            let mut names: Vec<(String, bool)> = text.split('\0').filter_map(|r| r.split_once('\t')).map(|(k, n)| (n.to_string(), k == "f")).collect();
            names.sort();
            for (n, is_file) in names {
                if !is_file || !keep(&n) {
                    continue;
                }
                fragments.push(ctx.read(&format!("{}/{n}", a.src.trim_end_matches('/'))).await?.unwrap_or_default());
            }
        } else {
            let dir = crate::modules::find_src_kind(&a.src, ctx.task, ctx.playbook_dir, ctx.project_root, true).filter(|p| p.is_dir()).or_else(|| Some(std::path::PathBuf::from(&a.src))).filter(|p| p.is_dir()).ok_or_else(|| StepError::failed(format!("Source ({}) is not a directory", a.src)))?;
            let mut names: Vec<String> = std::fs::read_dir(&dir).map_err(|e| StepError::failed(format!("assemble: {}: {e}", dir.display())))?.flatten().filter(|e| e.path().is_file()).map(|e| e.file_name().to_string_lossy().into_owned()).collect();
            names.sort();
            for n in names.into_iter().filter(|n| keep(n)) {
                fragments.push(crate::vault::read_file(&dir.join(&n)).map_err(|e| StepError::failed(format!("assemble: {e}")))?);
            }
        }
        let content = join(&fragments, a.delimiter.as_deref());
        let current = ctx.stat_read(&a.dest).await?;
        let backup = (a.backup.unwrap_or(false) && !ctx.check && current.1.is_some()).then(|| backup_name(&a.dest));
        let st = current.0.clone();
        let spec = WriteSpec { dest: a.dest.clone(), content: content.clone(), mode: a.mode, owner: a.owner.clone(), group: a.group.clone(), validate: a.validate, validate_in_place: false, backup };
        let mut plan = plan_write_over(ctx, spec, current)?;
        plan.result.insert("src".into(), json!(a.src));
        crate::modules::support::write::written_attrs(&mut plan.result, &content, a.mode, a.owner, a.group, st.as_ref());
        plan.result.insert("msg".into(), json!("OK"));
        // ansible-core's assemble module shows no diff; its action plugin (the fragments here,
        // `remote_src: false`) does.
        if a.remote_src.unwrap_or(true) {
            plan.diff = None;
        }
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use super::join;

    #[test]
    fn fragments_join_as_ansible_core_joins_them() {
        let f = vec![b"a".to_vec(), b"b\n".to_vec(), b"c".to_vec()];
        assert_eq!(join(&f, None), b"a\nb\nc");
        assert_eq!(join(&f, Some("# --")), b"a\n# --\nb\n# --\nc");
        assert_eq!(join(&[b"x\n".to_vec(), b"y\n".to_vec()], Some("--\\n")), b"x\n--\n\ny\n");
    }
}
