//! `script`: a local script (the role's or playbook's `files/`) copied to the host and run
//! there with its arguments, then removed, as ansible-core's script does; `creates` and
//! `removes` as for `command`. In check mode it is skipped unless `creates`/`removes` decide.

use async_trait::async_trait;
use documented::Documented;
use serde::Deserialize;
use serde_json::{json, Value as Json};

use crate::modules::{find_src, opt, typed, ArgSpec, Kind, Module, Outcome, Plan, StepCtx, StepError};
use crate::transport::{quote, Cmd};

/// `script`: a script from this machine copied to the host and run there with its arguments;
/// `creates`/`removes` as for `command`.
///
/// Returns: `rc`, `stdout`, `stderr`, `stdout_lines`, `stderr_lines`.
///
/// Check mode: skipped unless `creates` or `removes` decide it, as in ansible-core.
#[derive(Documented)]
pub struct Script;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(default, alias = "_raw_params")]
    cmd: Option<String>,
    creates: Option<String>,
    removes: Option<String>,
    chdir: Option<String>,
    executable: Option<String>,
    free_form: Option<String>,
    #[serde(default)]
    decrypt: Option<Json>,
}

#[async_trait]
impl Module for Script {
    fn name(&self) -> &'static str {
        "script"
    }
    fn doc(&self) -> &'static str {
        Self::DOCS
    }
    fn spec(&self) -> &'static [ArgSpec] {
        const S: &[ArgSpec] = &[
            opt("cmd", Kind::Str).doc("The local script and its arguments (`files/check.sh --fast`)."),
            opt("creates", Kind::Str).doc("A path on the host: when it exists, the script does not run."),
            opt("removes", Kind::Str).doc("A path on the host: when it does not exist, the script does not run."),
            opt("chdir", Kind::Str).doc("The folder on the host to run the script in."),
            opt("executable", Kind::Str).doc("The interpreter to run the script with (its `#!` line otherwise)."),
            opt("free_form", Kind::Str).doc("The script and its arguments written after the module name."),
            opt("decrypt", Kind::Bool).default("true").doc("Decrypt a vault-encrypted script before sending it."),
        ];
        S
    }
    fn free_form(&self) -> bool {
        true
    }
    async fn plan(&self, ctx: &StepCtx<'_>, args: &Json) -> Result<Plan, StepError> {
        let a: Args = typed("script", args)?;
        let _ = (&a.free_form, &a.decrypt);
        let line = a.cmd.clone().ok_or_else(|| StepError::Failed { msg: "script: give the script as `script: path args` or `cmd:`".into(), result: json!({"msg": "one of the following is required: _raw_params, cmd"}) })?;
        let words = shell_words::split(&line).map_err(|e| StepError::failed(format!("script: cannot split {line:?}: {e}")))?;
        let (src, rest) = words.split_first().ok_or_else(|| StepError::failed("script: no script named"))?;
        if let Some(p) = &a.creates {
            if ctx.run(Cmd::argv(["test", "-e", p])).await?.ok() {
                return Ok(Plan { skipped: Some(format!("{p} exists, matching creates option")), ..Plan::ok() });
            }
        }
        if let Some(p) = &a.removes {
            if !ctx.run(Cmd::argv(["test", "-e", p])).await?.ok() {
                return Ok(Plan { skipped: Some(format!("{p} does not exist, matching removes option")), ..Plan::ok() });
            }
        }
        if ctx.check && a.creates.is_none() && a.removes.is_none() {
            return Ok(Plan { skipped: Some("check mode is not supported for this task (script)".into()), ..Plan::ok() });
        }
        let path = find_src(src, ctx.task, ctx.playbook_dir, ctx.project_root).ok_or_else(|| StepError::failed(format!("Could not find or access '{src}'")))?;
        let body = crate::vault::read_file(&path).map_err(|e| StepError::failed(format!("script: {e}")))?;
        let run = match &a.executable {
            Some(exe) => format!("{} \"$t\"", quote::quote(exe)),
            None => "\"$t\"".to_string(),
        };
        let args_q = quote::join(rest);
        let cd = a.chdir.as_ref().map(|d| format!("cd {} && ", quote::quote(d))).unwrap_or_default();
        let script = format!("t=$(mktemp) || exit 1; cat > \"$t\"; chmod 0700 \"$t\"; ( {cd}{run} {args_q} < /dev/null ); rc=$?; rm -f \"$t\"; exit $rc");
        let mut plan = Plan::ok();
        plan.changes.push(format!("run the script {} {args_q}", path.display()));
        plan.commands.push(Cmd::shell(script).stdin(body).label(format!("script {line}")));
        Ok(plan)
    }
    async fn apply(&self, ctx: &StepCtx<'_>, plan: Plan) -> Result<Outcome, StepError> {
        crate::modules::commands::raw::run_reporting(ctx, plan).await
    }
}
