//! Stage 4: the module's read-only `plan`, after the arguments ansible-core's module takes and
//! recover does not build are judged, and symbolic modes resolved against the path. A plan is
//! data: the changes in words, the exact commands, the diff, what it would destroy.

use serde_json::{json, Value as Json};

use super::record::from_error;
use super::StepResult;
use crate::modules::{Module, Plan, StepCtx};
use crate::report::Status;

/// The plan of the step, and its arguments as the module takes them.
pub(super) async fn plan(sctx: &StepCtx<'_>, module: &dyn Module, mut args: Json) -> Result<(Plan, Json), StepResult> {
    crate::modules::support::unbuilt_args::prepare(sctx, module.name(), &mut args).await.map_err(from_error)?;
    // A symbolic mode (`u=rwx,g=rx`) becomes the octal mode it gives this path, as ansible-core.
    crate::modules::support::modes::resolve(sctx, module.name(), &mut args).await.map_err(from_error)?;
    let plan = module.plan(sctx, &args).await.map_err(from_error)?;
    Ok((plan, args))
}

/// A plan that says the module does not run here (ansible-core's "does not support check
/// mode"): the step is skipped with the reason.
pub(super) fn skipped(reason: &str) -> StepResult {
    let mut r = StepResult::new(Status::Skipped);
    r.executed = false;
    r.note = Some(format!("skipped: {reason}"));
    r.result.insert("skipped".into(), json!(true));
    r.result.insert("skipped_reason".into(), json!(reason));
    // ansible-core's module says why in `msg` ("remote module (X) does not support check
    // mode", "X exists, matching creates option").
    r.result.insert("msg".into(), json!(reason));
    r
}
