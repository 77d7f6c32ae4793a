//! Stage 5: what a plan needs before it may change the host. Its destructive marks (the
//! module's, and the task's `destructive:`) and the paths they name, checked without the host
//! (never a system root, never the backup root, never a backup of this run); under
//! `--automation`, every step that is not read-only; under `recover apply`, the saved plan's
//! own step, or nothing.

use serde_json::Value as Json;

use super::record::{input_failure, refused};
use super::saved::{self, Seen};
use super::StepResult;
use crate::executor::state::HostState;
use crate::executor::PlayEnv;
use crate::modules::{Plan, StepCtx};
use crate::playbook::Task;
use crate::safety::{Decision, Destructive, Tier};

/// What the step needs before it runs: its destructive marks, when it has any (the gate of
/// stage 6 then takes its backup and asks).
pub(super) struct Requirement {
    pub destructive: Option<Destructive>,
}

/// The requirement of a step about to change the host; `Err` when it may not run at all.
pub(super) fn require(env: &PlayEnv, sctx: &StepCtx<'_>, plan: &Plan, args: &Json, state: &HostState, seen: Option<(String, Seen<'_>)>) -> Result<Requirement, StepResult> {
    let task = sctx.task;
    let destructive = merged(env, task, plan, sctx.vars).map_err(input_failure)?;
    if let Some(d) = &destructive {
        check_paths(sctx, d, state).map_err(refused)?;
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
            Some(d) => Some(tier_of(env, sctx, d).map_err(|e| StepResult::failed(e, Default::default()))?),
            None => None,
        };
        let need = tier.map(|t| requirement(env, sctx.host, &seen.name, t));
        let e = saved::entry(env, key, &seen, "change", destructive.as_ref().zip(tier), need, state.planned_changes == 0);
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

/// The plan's own destructive marks plus the task's `destructive:` declaration.
pub(super) fn merged(env: &PlayEnv, task: &Task, plan: &Plan, ctx: &minijinja::Value) -> Result<Option<Destructive>, crate::error::SourceError> {
    let mut d = plan.destructive.clone();
    // A module the baseline names in a tier (`community.postgresql.*: BLOCK`) asks at that tier
    // whenever it changes something.
    if let (None, true, Some(t)) = (&d, plan.changed(), env.safety.baseline.as_ref().and_then(|b| b.module_tier(&task.module))) {
        d = Some(Destructive { reason: format!("{} changes something (the baseline gives the module tier {t})", task.module), tier: Some(t), ..Default::default() });
    }
    if let Some(decl) = &task.declared {
        if plan.changed() || plan.run_anyway {
            let mut m = d.unwrap_or_default();
            for p in &decl.paths {
                m.paths.push(env.sources.templates.render_str(p, ctx, &task.span)?);
            }
            m.services.extend(decl.services.iter().cloned());
            m.tier = m.tier.max(decl.tier);
            if let Some(r) = &decl.reason {
                m.reason = env.sources.templates.render_str(r, ctx, &task.span)?;
            } else if m.reason.is_empty() {
                m.reason = format!("{} (declared destructive)", task.display_name());
            }
            if let Some(p) = &decl.preserves {
                m.preserves = Some(env.sources.templates.render_str(p, ctx, &task.span)?);
            }
            d = Some(m);
        }
    }
    Ok(d)
}

/// The tier of a destructive step: the highest of module, task and baseline, else the baseline's default.
pub(super) fn tier_of(env: &PlayEnv, sctx: &StepCtx<'_>, d: &Destructive) -> Result<Tier, String> {
    let safety = &env.safety;
    let baseline_tier = match &safety.baseline {
        Some(b) => {
            let paths: Vec<String> = d.paths.iter().chain(d.tier_paths.iter()).cloned().collect();
            b.tier_for(&paths, &d.services, Some(&sctx.task.module), sctx.vars, &env.sources.templates).map_err(|e| e.to_string())?
        }
        None => None,
    };
    let default = safety.baseline.as_ref().and_then(|b| b.default_tier).unwrap_or(Tier::StandardHitl);
    // The baseline's word (a path's or service's tier, else its default) is the floor: a task
    // or module may raise it, never lower it.
    let floor = baseline_tier.unwrap_or(default);
    Ok(d.tier.map_or(floor, |t| t.max(floor)))
}

/// The SOP's backup folder: the backup root of steps that run as root.
pub const DEFAULT_BACKUP_ROOT: &str = "/var/backups/recover";

/// The backup root of a host as its variables give it: `recover_backup_root`, else the SOP's
/// folder (handed to modules as [`StepCtx::backup_root`]).
pub fn configured_backup_root(vars: &minijinja::Value) -> String {
    vars.get_attr("recover_backup_root").ok().filter(|v| !v.is_undefined() && !v.is_none()).map(|v| crate::template::pyrepr::py_str(&v)).unwrap_or_else(|| DEFAULT_BACKUP_ROOT.into())
}

/// The backup root as far as it is known without asking the host: `recover_backup_root`, the
/// root already found for the user this step runs as, else the SOP's folder.
pub(super) fn known_backup_root(sctx: &StepCtx<'_>, state: &HostState) -> String {
    var(sctx, "recover_backup_root").or_else(|| state.backup_roots.get(&sctx.become_user.clone().unwrap_or_default()).cloned()).unwrap_or_else(|| DEFAULT_BACKUP_ROOT.into())
}

/// Checks that need no host: a destructive step may not touch a system root, its own
/// backup root, or a backup this run took (invariant 9). `Err` says why it may not start.
pub(super) fn check_paths(sctx: &StepCtx<'_>, d: &Destructive, state: &HostState) -> Result<(), String> {
    let host = sctx.host;
    let root = known_backup_root(sctx, state);
    for p in &d.paths {
        if p.trim().is_empty() {
            return Err(format!("host {host}: '{}' names an empty path; refused", sctx.task.display_name()));
        }
        if let Some(r) = crate::safety::paths::system_root(p) {
            return Err(format!("host {host}: '{}' would remove, move or replace the system folder {r} (from {p:?}); recover never does that", sctx.task.display_name()));
        }
        if crate::safety::paths::overlap(p, &root) {
            return Err(format!(
                "host {host}: '{}' touches {p}, and the backup root {root} lies {} it: the backup would not survive the step; set recover_backup_root outside {p}",
                sctx.task.display_name(),
                if crate::safety::paths::within(&root, p) { "inside" } else { "around" }
            ));
        }
        if let Some(b) = state.backups.iter().find(|b| crate::safety::paths::within(&b.archive, p)) {
            return Err(format!("host {host}: '{}' touches {p}, which holds the backup {} taken earlier in this run; refused", sctx.task.display_name(), b.archive));
        }
    }
    Ok(())
}

/// What the real run will require for this step, in words, for the dry-run.
pub(super) fn requirement(env: &PlayEnv, host: &str, task: &str, tier: Tier) -> String {
    match env.safety.confirmer.policy.decide_without_prompt(host, task, tier) {
        Some(Decision::Run { how }) => format!("runs without asking ({how})"),
        Some(Decision::Refused { msg }) => format!("will be refused: {msg}"),
        Some(Decision::Abort) => "will be refused".into(),
        None if tier == Tier::Block => format!("needs the operator to type the host name ({host}) at the prompt"),
        None => "needs a yes at the prompt".into(),
    }
}

pub(super) fn var(sctx: &StepCtx<'_>, name: &str) -> Option<String> {
    sctx.vars.get_attr(name).ok().filter(|v| !v.is_undefined() && !v.is_none()).map(|v| crate::template::pyrepr::py_str(&v))
}
