//! Stage 7: the module's `apply`, and nothing else: from here on every command it runs is an
//! action, tracked on the host (a killed run's action still holds the lock). A `backup` step's
//! archive is streamed home with `--backup-copy`.

use serde_json::json;

use super::record::from_error;
use super::StepResult;
use crate::executor::state::HostState;
use crate::executor::PlayEnv;
use crate::modules::{Module, Plan, StepCtx};
use crate::report::Status;

/// Applies the plan; `approved`: how a destructive step was approved (kept in its result).
#[allow(clippy::too_many_arguments)]
pub(super) async fn apply(env: &PlayEnv, host: &str, sctx: &StepCtx<'_>, module: &dyn Module, plan: Plan, state: &mut HostState, mut r: StepResult, approved: Option<String>) -> Result<StepResult, StepResult> {
    r.note = None;
    sctx.applying.store(true, std::sync::atomic::Ordering::SeqCst);
    state.plan_applied += 1;
    match module.apply(sctx, plan).await {
        Ok(o) => {
            if sctx.task.module == "backup" {
                if let Some(record) = o.result.get("backup").and_then(|b| serde_json::from_value::<crate::safety::backup::BackupRecord>(b.clone()).ok()) {
                    if let Err(e) = super::protect::copy_home(env, sctx, &record).await {
                        return Err(StepResult { msg: Some(format!("host {host}: --backup-copy failed: {e}")), ..StepResult::new(Status::Refused) });
                    }
                }
            }
            r.status = if o.changed { Status::Changed } else { Status::Ok };
            r.result = o.result;
            if let Some(a) = approved {
                r.result.insert("approved_by".into(), json!(a));
            }
            Ok(r)
        }
        Err(e) => {
            let mut f = from_error(e);
            f.changes = r.changes;
            Err(f)
        }
    }
}
