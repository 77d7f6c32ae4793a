//! Stage 5: what a plan needs before it may change the host. Its destructive marks (the
//! module's, and the task's `destructive:`) and the paths they name, checked without the host
//! (never a system root, never the backup root, never a backup of this run); under
//! `--automation`, every step that is not read-only; under `recover apply`, the saved plan's
//! own step, or nothing.

use serde_json::Value as Json;

use super::record::{input_failure, refused};
use super::saved::{self, Seen};
use super::{protect, StepResult};
use crate::executor::state::HostState;
use crate::executor::PlayEnv;
use crate::modules::{Plan, StepCtx};
use crate::playbook::Task;
use crate::safety::Destructive;

/// What the step needs before it runs: its destructive marks, when it has any (the gate of
/// stage 6 then takes its backup and asks).
pub(super) struct Requirement {
    pub destructive: Option<Destructive>,
}

/// The requirement of a step about to change the host; `Err` when it may not run at all.
pub(super) fn require(env: &PlayEnv, sctx: &StepCtx<'_>, plan: &Plan, args: &Json, state: &HostState, seen: Option<(String, Seen<'_>)>) -> Result<Requirement, StepResult> {
    let task = sctx.task;
    let destructive = protect::merged(env, task, plan, sctx.vars).map_err(input_failure)?;
    if let Some(d) = &destructive {
        protect::check_paths(sctx, d, state).map_err(refused)?;
    }
    // Under --automation every step that is not read-only needs the automation policy's
    // word (its tier AUTO, the gate green, no freeze), destructive or not.
    let destructive = match destructive {
        None if env.safety.confirmer.policy.automation && !task.read_only => Some(automation_step(task, args)),
        d => d,
    };
    // `recover apply`: only the plan's own changes run.
    if let Some((key, seen)) = seen {
        let tier = match &destructive {
            Some(d) => Some(protect::tier_of(env, sctx, d).map_err(|e| StepResult::failed(e, Default::default()))?),
            None => None,
        };
        let e = saved::entry(env, key, &seen, "change", destructive.as_ref().zip(tier), state.planned_changes == 0);
        saved::check_change(env, sctx.host, state, &e).map_err(refused)?;
    }
    Ok(Requirement { destructive })
}

/// A step that is not read-only, seen by the automation policy: the services it names give its tier.
pub(super) fn automation_step(task: &Task, args: &Json) -> crate::safety::Destructive {
    let services = match task.module.as_str() {
        "service" | "systemd" => args.get("name").and_then(Json::as_str).map(|s| vec![s.to_string()]).unwrap_or_default(),
        _ => Vec::new(),
    };
    crate::safety::Destructive { reason: format!("{} is not read-only", task.display_name()), services, ..Default::default() }
}
