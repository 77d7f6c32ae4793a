//! `raw`: a command line given to the host's shell as it is (no Python on the host needed),
//! as ansible-core runs it; skipped in check mode, as there.

use async_trait::async_trait;
use documented::Documented;
use serde_json::{json, Value as Json};

use crate::modules::{opt, ArgSpec, Kind, Module, Outcome, Plan, StepCtx, StepError};
use crate::transport::{quote, Cmd};

/// `raw`: a command line given to the host's shell as it is (no Python needed on the host).
///
/// Returns: `rc`, `stdout`, `stderr`, `stdout_lines`, `stderr_lines`.
///
/// Check mode: skipped, as ansible-core does.
#[derive(Documented)]
pub struct Raw;

/// Runs the plan's commands with ansible-core's raw/script result (rc, stdout, stderr and their
/// lines); a command that exits non-zero fails the step with "non-zero return code".
pub async fn run_reporting(ctx: &StepCtx<'_>, plan: Plan) -> Result<Outcome, StepError> {
    let mut result = plan.result;
    for cmd in plan.commands {
        let out = ctx.run(cmd).await?;
        let (so, se) = (out.stdout_str(), out.stderr_str());
        result.extend([
            ("rc".to_string(), json!(out.rc)), ("stdout".to_string(), json!(so)), ("stderr".to_string(), json!(se)),
            ("stdout_lines".to_string(), json!(so.lines().collect::<Vec<_>>())), ("stderr_lines".to_string(), json!(se.lines().collect::<Vec<_>>())),
        ]);
        if out.rc != 0 {
            return Err(StepError::Failed { msg: "non-zero return code".into(), result: Json::Object(result) });
        }
    }
    Ok(Outcome { changed: true, result })
}

#[async_trait]
impl Module for Raw {
    fn name(&self) -> &'static str {
        "raw"
    }
    fn doc(&self) -> &'static str {
        Self::DOCS
    }
    fn spec(&self) -> &'static [ArgSpec] {
        const S: &[ArgSpec] = &[
            opt("executable", Kind::Str).doc("The shell to run the line with (the login shell otherwise)."),
        ];
        S
    }
    fn free_form(&self) -> bool {
        true
    }
    fn shell_args(&self) -> &'static [&'static str] {
        &["_raw_params"]
    }
    async fn plan(&self, ctx: &StepCtx<'_>, args: &Json) -> Result<Plan, StepError> {
        let line = args.get("_raw_params").and_then(Json::as_str).ok_or_else(|| StepError::failed("raw: give the command as `raw: ...`"))?.to_string();
        if ctx.check {
            return Ok(Plan { skipped: Some("check mode is not supported for raw".into()), ..Plan::ok() });
        }
        // ansible-core runs raw on a terminal (ssh -tt): its stderr arrives in stdout.
        let script = match args.get("executable").and_then(Json::as_str) {
            Some(exe) => format!("{} -c {} 2>&1", quote::quote(exe), quote::quote(&line)),
            None => format!("{{ {line}\n}} 2>&1"),
        };
        let mut plan = Plan::ok();
        plan.changes.push(format!("run: {line}"));
        plan.commands.push(Cmd::shell(script).label(line));
        Ok(plan)
    }
    async fn apply(&self, ctx: &StepCtx<'_>, plan: Plan) -> Result<Outcome, StepError> {
        run_reporting(ctx, plan).await
    }
}
