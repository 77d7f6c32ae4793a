//! Stage 2: the conditions around a step, as ansible-core judges them: `when` before it (a
//! false one skips it), `until` with `retries` and `delay` around it, `changed_when` and
//! `failed_when` on its result.

use minijinja::Value;
use serde_json::{json, Value as Json};

use super::context::{all_true, check_of, Overlay};
use super::record::input_failure;
use super::{interrupted, StepResult};
use crate::error::SourceError;
use crate::executor::state::HostState;
use crate::executor::vars::Layer;
use crate::executor::PlayEnv;
use crate::playbook::Task;
use crate::report::Status;
use crate::template::Vars;
use crate::transport::Connection;

/// `when`, then the step (again while `until` is false, up to `retries` more times).
pub(super) async fn one(env: &PlayEnv, host: &str, conn: &Connection, task: &Task, ctx: &Value, state: &mut HostState) -> StepResult {
    if task.until.is_empty() {
        return attempt(env, host, conn, task, ctx, state).await;
    }
    let t = &env.sources.templates;
    let num = |v: &Option<Json>, default: i64| -> Result<i64, SourceError> {
        match v {
            None => Ok(default),
            Some(raw) => {
                let r = t.render_value(raw, ctx, &task.span)?;
                r.as_i64().or_else(|| r.as_str().and_then(|s| s.trim().parse().ok())).ok_or_else(|| SourceError::new(task.span.clone(), format!("`retries`/`delay` must be a whole number, got {r}")))
            }
        }
    };
    let (retries, delay) = match (num(&task.retries, 3), num(&task.delay, 5)) {
        (Ok(r), Ok(d)) => (r, d),
        (Err(e), _) | (_, Err(e)) => return input_failure(e),
    };
    // As ansible-core: `retries: N` is the first attempt and N more; with none, `until` is
    // not evaluated at all.
    let attempts = if retries <= 0 { 1 } else { retries + 1 };
    if attempts <= 1 {
        return attempt(env, host, conn, task, ctx, state).await;
    }
    let mut n = 0;
    loop {
        n += 1;
        let mut r = attempt(env, host, conn, task, ctx, state).await;
        if r.would_run {
            // A command check mode skips: one attempt, as ansible-core counts it.
            r.result.insert("attempts".into(), json!(n));
            return r;
        }
        if !r.executed || r.hard || r.status == Status::Unreachable || r.status == Status::Refused {
            return r;
        }
        r.result.insert("attempts".into(), json!(n));
        let mut layer = Vars::new();
        let mut res = r.result.clone();
        res.insert("changed".into(), json!(r.status == Status::Changed));
        res.insert("failed".into(), json!(r.status == Status::Failed));
        if let Some(reg) = &task.register {
            layer.insert(reg.clone(), Json::Object(res.clone()));
        }
        layer.extend(res);
        let top = env.sources.templates.context(layer);
        let ctx2 = Value::from_object(Overlay { top, base: ctx.clone() });
        match all_true(env, &task.until, &ctx2) {
            Ok(true) => return r,
            Ok(false) if n >= attempts => {
                r.status = Status::Failed;
                // ansible-core reports one attempt fewer than it made, once they run out.
                r.result.insert("attempts".into(), json!(n - 1));
                r.msg = r.msg.or_else(|| Some(format!("`until` was still false after {n} attempts: {}", task.until.iter().map(|c| c.expr.as_str()).collect::<Vec<_>>().join(" and "))));
                return r;
            }
            Ok(false) => {}
            Err(e) => return input_failure(e),
        }
        if interrupted(env) {
            return r;
        }
        env.reporter.busy(host, &format!("{} (retrying, {} left)", task.display_name(), attempts - n));
        tokio::time::sleep(std::time::Duration::from_secs(delay.max(0) as u64)).await;
    }
}

/// The context `changed_when` and `failed_when` see: the step's result under its register
/// name (and its keys on their own), over the step's context.
fn result_context(env: &PlayEnv, host: &str, task: &Task, r: &StepResult, ctx: &Value) -> Value {
    let mut layer = Vars::new();
    let mut res = r.result.clone();
    res.insert("changed".into(), json!(r.status == Status::Changed));
    // As in ansible-core, the module's own `failed` is there for `failed_when` to read.
    res.insert("failed".into(), json!(r.status == Status::Failed));
    if let Some(reg) = &task.register {
        layer.insert(reg.clone(), Json::Object(res.clone()));
    }
    layer.extend(res);
    let ctx2 = env.sources.context(host, &env.play_hosts, &env.play.role_defaults, &env.play.vars, &[Layer::Data(&layer)]);
    Value::from_object(Overlay { top: ctx2, base: ctx.clone() })
}

/// A task whose loop could not be evaluated: its skipped result when its `when`, judged
/// without an item, is false (ansible-core evaluates the condition before raising the loop's
/// error); `None` when the condition holds or cannot be judged either.
pub(super) fn when_without_item(env: &PlayEnv, task: &Task, ctx: &Value) -> Option<StepResult> {
    let t = &env.sources.templates;
    task.when.iter().find(|c| matches!(t.eval_bool(&c.expr, ctx, &c.span), Ok(false))).map(skipped_by)
}

/// The result of a step a false `when` skipped.
fn skipped_by(c: &crate::playbook::Cond) -> StepResult {
    let mut r = StepResult::new(Status::Skipped);
    r.note = Some(format!("skipped: `{}` is false", c.expr));
    r.result.insert("skip_reason".into(), json!("Conditional result was False"));
    r.executed = false;
    r
}

/// `when`, then the step itself, then `changed_when` / `failed_when`.
async fn attempt(env: &PlayEnv, host: &str, conn: &Connection, task: &Task, ctx: &Value, state: &mut HostState) -> StepResult {
    let t = &env.sources.templates;
    for c in &task.when {
        match t.eval_bool(&c.expr, ctx, &c.span) {
            Ok(true) => {}
            Ok(false) => return skipped_by(c),
            Err(e) => return input_failure(e),
        }
    }
    let mut r = super::step(env, host, conn, task, ctx, state).await;
    // In check mode a planned step's `changed_when` still decides what it reports, as in
    // ansible-core (on the result the plan has; one that cannot be evaluated there is left).
    let planned = !r.executed && matches!(r.status, Status::Ok | Status::Changed) && !task.changed_when.is_empty() && r.note.as_deref().is_none_or(|n| !n.starts_with("skipped"));
    if planned && !r.hard {
        let ctx2 = result_context(env, host, task, &r, ctx);
        if let Ok(c) = all_true(env, &task.changed_when, &ctx2) {
            r.status = if c { Status::Changed } else { Status::Ok };
        }
        return r;
    }
    if !r.executed || r.hard || r.status == Status::Unreachable {
        return r;
    }
    // A command that ran and failed reports changed (ansible-core's command modules say so);
    // a module that refused (lineinfile's "does not exist", rc 257) does not.
    r.failed_changed = r.status == Status::Failed && r.result.contains_key("rc") && matches!(task.module.as_str(), "command" | "shell" | "raw" | "script" | "async_status");
    if !task.changed_when.is_empty() || !task.failed_when.is_empty() {
        if let Err(e) = judge(env, host, task, ctx, &mut r) {
            return input_failure(e);
        }
    }
    // A diagnostic never counts as a change.
    if task.read_only && r.status == Status::Changed {
        r.status = Status::Ok;
    }
    // A diagnostic that fails in a dry-run after earlier steps planned changes may be checking
    // what those steps would write: it cannot be judged before they run (the real run checks it).
    if check_of(env, task) && task.read_only && r.status == Status::Failed && state.planned_changes > 0 {
        let why = r.msg.take().unwrap_or_default();
        r.status = Status::Skipped;
        r.note = Some(format!("not checkable in a dry-run: {} earlier step(s) would change this host first (it runs for real after them); now: {why}", state.planned_changes));
    }
    r
}

/// `changed_when` / `failed_when` on a step that ran: they see its result under the register
/// name, as in Ansible. `changed_when` decides `changed` (a failed command too), then
/// `failed_when` decides `failed`; the status follows from both.
fn judge(env: &PlayEnv, host: &str, task: &Task, ctx: &Value, r: &mut StepResult) -> Result<(), SourceError> {
    let ctx2 = result_context(env, host, task, r, ctx);
    let mut changed = r.status == Status::Changed || (r.status == Status::Failed && (!r.changes.is_empty() || r.result.contains_key("rc")));
    if !task.changed_when.is_empty() {
        changed = all_true(env, &task.changed_when, &ctx2)?;
    }
    let mut failed = r.status == Status::Failed;
    if !task.failed_when.is_empty() {
        // A list of conditions is an `and`, as Ansible reads failed_when and changed_when.
        let fw = all_true(env, &task.failed_when, &ctx2)?;
        r.result.insert("failed_when_result".into(), json!(fw));
        if fw {
            r.msg = r.msg.take().or_else(|| Some(format!("failed_when is true: {}", task.failed_when.iter().map(|c| c.expr.as_str()).collect::<Vec<_>>().join(" and "))));
            failed = true;
        } else {
            if failed {
                r.msg = None;
            }
            failed = false;
        }
    }
    if matches!(r.status, Status::Ok | Status::Changed | Status::Failed) {
        r.failed_changed = failed && changed;
        r.status = if failed {
            Status::Failed
        } else if changed {
            Status::Changed
        } else {
            Status::Ok
        };
    }
    Ok(())
}
