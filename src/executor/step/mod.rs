//! One task on one host: the product's promise, stage by stage, each stage a file of its own
//! and one value carried from each to the next.
//!
//! 1. [`items`]: a task becomes its steps (`--step`, `run_once`, `throttle`, a loop's items).
//! 2. [`conditions`]: `when` before a step, `until` around it, `changed_when` and
//!    `failed_when` after it.
//! 3. [`render`]: where it runs (`delegate_to`), as whom (`become`), its arguments and
//!    environment: a [`render::Rendered`] step and its [`StepCtx`](crate::modules::StepCtx).
//! 4. [`plan`]: the module's read-only `plan`. A dry-run stops here: [`describe`] says what
//!    the real run would do and require.
//! 5. [`require`]: what the plan needs before it may change the host: its destructive marks,
//!    the paths it may touch (never a system root, never its own backups), the automation
//!    policy, the saved plan's word: a [`require::Requirement`].
//! 6. [`protect`]: the verified pre-backup, the preview, the confirmation or approval.
//! 7. [`apply`]: the module's `apply`, and nothing else.
//! 8. [`record`]: the result registered, facts and notifications kept, the event reported.
//!
//! A new kind of module enters at one door: its `plan` and `apply`; every stage around them is
//! the same for every module.

mod apply;
mod conditions;
mod context;
mod describe;
mod items;
mod plan;
mod protect;
mod record;
mod render;
mod require;
mod saved;

use minijinja::Value;
use serde_json::Value as Json;

pub use context::{check_of, context, load_vars_files, loop_items, role_magic};
pub use items::run_task;

use crate::executor::state::HostState;
use crate::executor::PlayEnv;
use crate::modules;
use crate::playbook::Task;
use crate::report::Status;
use crate::transport::Connection;

/// Whether the host goes on after a task.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum StepEnd {
    Continue,
    Failed,
    Unreachable,
    Refused,
}

/// What one step did, carried from the stage that decided it to [`record`].
pub(super) struct StepResult {
    pub status: Status,
    /// Not the command's own result (a template error, a failed become): `failed_when` cannot clear it.
    pub hard: bool,
    pub result: serde_json::Map<String, Json>,
    pub msg: Option<String>,
    pub changes: Vec<String>,
    pub diff: Option<String>,
    pub note: Option<String>,
    pub executed: bool,
    /// A failed step that changed something first (Ansible's `changed: true` on a failed result:
    /// a command that ran and exited non-zero). Counted as changed in the recap too.
    pub failed_changed: bool,
    /// A dry-run step reported skipped as ansible-core's check mode does (a command), whose
    /// plan would still change the host: it counts among the host's planned changes.
    pub would_run: bool,
}

impl StepResult {
    pub(super) fn new(status: Status) -> StepResult {
        StepResult { status, hard: false, result: Default::default(), msg: None, changes: Vec::new(), diff: None, note: None, executed: true, failed_changed: false, would_run: false }
    }
    pub(super) fn failed(msg: String, result: serde_json::Map<String, Json>) -> StepResult {
        StepResult { msg: Some(msg), result, ..StepResult::new(Status::Failed) }
    }
}

/// The step itself, stage by stage (see the module doc).
async fn step(env: &PlayEnv, host: &str, conn: &Connection, task: &Task, ctx: &Value, state: &mut HostState) -> StepResult {
    let Some(module) = modules::get(&task.module) else {
        return StepResult::failed(format!("unknown module '{}'", task.module), Default::default());
    };
    if task.async_secs.is_some() && crate::playbook::NO_ASYNC.contains(&task.module.as_str()) {
        let msg = format!("This action ({}) does not support async.", task.module);
        return StepResult::failed(msg.clone(), serde_json::json!({ "msg": msg }).as_object().cloned().unwrap_or_default());
    }
    let target = match render::target(env, host, conn, task, ctx, state).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let rendered = match render::render(env, &target, task, module, ctx) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let (sctx, args) = rendered.step_ctx(env, &target, task, ctx);
    let (mut plan, args) = match plan::plan(&sctx, module, args).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    // In diff mode (--diff, or the task's `diff: true`) the result carries ansible-core's
    // `diff` (before and after), unless the task hides its values.
    let diff_mode = task.diff.unwrap_or_else(|| env.reporter.diff());
    if let (true, Some(d), false) = (diff_mode, &plan.diff, task.no_log.as_ref().and_then(crate::playbook::Flag::fixed).unwrap_or(false)) {
        let text = |b: &Option<Vec<u8>>| b.as_deref().map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default();
        plan.result.entry("diff").or_insert(serde_json::json!({"before": text(&d.before), "after": text(&d.after), "before_header": d.path, "after_header": d.path}));
    }
    if let Some(reason) = &plan.skipped {
        return plan::skipped(reason);
    }
    let mut r = StepResult::new(Status::Ok);
    r.note = plan.note.clone();
    r.changes = plan.changes.clone();
    r.diff = plan.diff.as_ref().map(modules::FileDiff::capped);
    let seen = saved::seen(env, state, &sctx, task, &args, &plan);
    let r = if plan.done {
        saved::read_only(env, &sctx, state, seen);
        // Done while planning (read-only modules, add_host): changed only when it says so.
        if plan.changed() {
            r.status = Status::Changed;
        }
        r.result = plan.result;
        r
    } else if check_of(env, task) {
        match describe::describe(env, host, &sctx, &plan, &args, state, seen, r) {
            Ok(mut r) => {
                describe::finish(&mut r, plan);
                r
            }
            Err(r) => return r,
        }
    } else if plan.changed() || plan.run_anyway {
        let req = match require::require(env, &sctx, &plan, &args, state, seen) {
            Ok(q) => q,
            Err(r) => return r,
        };
        let approved = match protect::protect(env, host, &sctx, &plan, &args, req, state).await {
            Ok(a) => a,
            Err(r) => return r,
        };
        match apply::apply(env, host, &sctx, module, plan, state, r, approved).await {
            Ok(r) => r,
            Err(r) => return r,
        }
    } else {
        r.result = plan.result;
        r
    };
    record::failed_by_result(host, r)
}

/// Whether a stop signal came (no new action starts).
pub(super) fn interrupted(env: &PlayEnv) -> bool {
    env.safety.interrupted.load(std::sync::atomic::Ordering::SeqCst)
}
