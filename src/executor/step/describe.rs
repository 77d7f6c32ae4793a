//! Stage 4, in a dry-run: what the real run would do with the plan, and require. A destructive
//! step says its tier, how it would be guarded (its verified backup) and what the run with the
//! same flags will need; a `--save-plan` dry-run records each step; a command ansible-core's
//! check mode cannot predict is reported skipped, though its plan stands.

use serde_json::{json, Value as Json};

use super::record::refused;
use super::require::{self, automation_step};
use super::saved::{self, Seen};
use super::StepResult;
use crate::executor::state::HostState;
use crate::executor::PlayEnv;
use crate::modules::{Plan, StepCtx};
use crate::report::Status;

/// The dry-run's word on a planned step (see the module doc); `Err` when even the dry-run
/// refuses it (a system root, the backup root).
#[allow(clippy::too_many_arguments)]
pub(super) fn describe(env: &PlayEnv, host: &str, sctx: &StepCtx<'_>, plan: &Plan, args: &Json, state: &HostState, seen: Option<(String, Seen<'_>)>, mut r: StepResult) -> Result<StepResult, StepResult> {
    let task = sctx.task;
    r.executed = false;
    r.status = if plan.changed() { Status::Changed } else { Status::Ok };
    let kind = if plan.changed() || plan.run_anyway { "change" } else { "ok" };
    let before_change = state.planned_changes == 0;
    if let Ok(Some(d)) = require::merged(env, task, plan, sctx.vars) {
        require::check_paths(sctx, &d, state).map_err(refused)?;
        let tier = require::tier_of(env, sctx, &d).map_err(|e| StepResult::failed(e, Default::default()))?;
        if let Some((key, seen)) = &seen {
            saved::record(env, saved::entry(env, key.clone(), seen, kind, Some((&d, tier)), Some(require::requirement(env, sctx.host, &seen.name, tier)), before_change), sctx.host);
        }
        let guard = match (&d.preserves, d.paths.is_empty()) {
            (Some(p), _) => format!("preserves the original itself: {p}"),
            (None, true) => "no paths to back up".to_string(),
            (None, false) => format!("a verified backup of {} is taken first", d.paths.join(", ")),
        };
        let need = require::requirement(env, host, &task.display_name(), tier);
        r.changes.insert(0, format!("DESTRUCTIVE [{tier}]: {}; {guard}; {need}", d.reason));
    } else if env.safety.confirmer.policy.automation && !task.read_only {
        let d = automation_step(task, args);
        let tier = require::tier_of(env, sctx, &d).unwrap_or(crate::safety::Tier::Block);
        let need = require::requirement(env, host, &task.display_name(), tier);
        r.changes.insert(0, format!("[{tier}] not read-only; under --automation it {need}"));
        if let Some((key, seen)) = &seen {
            saved::record(env, saved::entry(env, key.clone(), seen, kind, Some((&d, tier)), Some(require::requirement(env, sctx.host, &seen.name, tier)), before_change), sctx.host);
        }
    } else if let Some((key, seen)) = &seen {
        saved::record(env, saved::entry(env, key.clone(), seen, kind, None, None, before_change), sctx.host);
    }
    Ok(r)
}

/// The plan's result, and ansible-core's check-mode skip of a command it cannot predict (the
/// plan stands).
pub(super) fn finish(r: &mut StepResult, plan: Plan) {
    r.result = plan.result;
    if plan.check_skip {
        r.status = Status::Skipped;
        r.would_run = true;
        r.result.insert("skipped".into(), json!(true));
        r.note = Some("not run in a dry-run (as ansible-core's check mode skips commands)".into());
    }
}
