//! `tempfile`: a new temporary file or folder (`mktemp`), its path registered. ansible-core's
//! tempfile does not support check mode: there the step is skipped.

use async_trait::async_trait;
use documented::Documented;
use serde::Deserialize;
use serde_json::{json, Value as Json};

use crate::modules::{opt, typed, ArgSpec, Kind, Module, Outcome, Plan, StepCtx, StepError};
use crate::transport::{quote, Cmd};

/// `tempfile`: a new temporary file or folder on the host.
///
/// Returns: `path`.
///
/// Check mode: makes none; `path` is what it would be named like.
#[derive(Documented)]
pub struct TempFile;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    state: Option<String>,
    path: Option<String>,
    prefix: Option<String>,
    suffix: Option<String>,
}

#[async_trait]
impl Module for TempFile {
    fn name(&self) -> &'static str {
        "tempfile"
    }
    fn doc(&self) -> &'static str {
        Self::DOCS
    }
    fn spec(&self) -> &'static [ArgSpec] {
        const S: &[ArgSpec] = &[
            opt("state", Kind::Str).default("file").doc("`file` or `directory`."),
            opt("path", Kind::Str).doc("The folder to make it in (the host's temporary folder otherwise)."),
            opt("prefix", Kind::Str).default("ansible.").doc("The start of its name."),
            opt("suffix", Kind::Str).default("").doc("The end of its name."),
        ];
        S
    }
    async fn plan(&self, ctx: &StepCtx<'_>, args: &Json) -> Result<Plan, StepError> {
        let a: Args = typed("tempfile", args)?;
        if ctx.check {
            return Ok(Plan { skipped: Some("remote module (tempfile) does not support check mode".into()), ..Plan::ok() });
        }
        let (prefix, suffix) = (a.prefix.unwrap_or_else(|| "ansible.".into()), a.suffix.unwrap_or_default());
        for (k, v) in [("prefix", &prefix), ("suffix", &suffix)] {
            if v.contains('/') {
                return Err(StepError::failed(format!("{k} must be a valid file name component, got {v:?}")));
            }
        }
        let dir = match a.path {
            Some(p) => p,
            None => "${TMPDIR:-/tmp}".to_string(),
        };
        let dir_q = if dir.starts_with("${") { format!("\"{dir}\"") } else { quote::quote(&dir) };
        let flag = match a.state.as_deref().unwrap_or("file") {
            "file" => "",
            "directory" => "-d ",
            other => return Err(StepError::failed(format!("tempfile: value of state must be one of: directory, file, got: {other}"))),
        };
        let template = quote::quote(&format!("{prefix}XXXXXXXX{suffix}"));
        let mut plan = Plan::ok();
        plan.changes.push(format!("create a temporary {} in {dir}", if flag.is_empty() { "file" } else { "folder" }));
        // The path, then what ansible-core's result says of it (state, mode, owner, size).
        plan.commands.push(Cmd::shell(format!("p=$(mktemp {flag}-p {dir_q} {template}) && printf '%s\\n' \"$p\" && stat -c '%a %U %G %u %g %s' -- \"$p\"")));
        plan.result.insert("state".into(), json!(if flag.is_empty() { "file" } else { "directory" }));
        Ok(plan)
    }
    async fn apply(&self, ctx: &StepCtx<'_>, plan: Plan) -> Result<Outcome, StepError> {
        let mut result = plan.result;
        for cmd in plan.commands {
            let out = ctx.run_ok(cmd).await?;
            let text = out.stdout_str();
            let mut lines = text.lines();
            result.insert("path".into(), json!(lines.next().unwrap_or_default().trim()));
            if let [mode, owner, group, uid, gid, size] = lines.next().unwrap_or_default().split_whitespace().collect::<Vec<_>>()[..] {
                result.insert("mode".into(), json!(format!("{:04o}", u32::from_str_radix(mode, 8).unwrap_or(0))));
                result.insert("owner".into(), json!(owner));
                result.insert("group".into(), json!(group));
                result.insert("uid".into(), json!(uid.parse::<u64>().unwrap_or(0)));
                result.insert("gid".into(), json!(gid.parse::<u64>().unwrap_or(0)));
                result.insert("size".into(), json!(size.parse::<u64>().unwrap_or(0)));
            }
        }
        Ok(Outcome { changed: true, result })
    }
}
