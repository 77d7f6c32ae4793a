//! Stage 8: what a step leaves behind. Its result registered (with what ansible-core adds to
//! it), the facts it returned kept (for the host, or the delegated host), `include_vars` and
//! `set_fact` values published, a backup recorded, handlers notified, and one event reported,
//! with everything `no_log` hides hidden.

use std::time::Instant;

use serde_json::{json, Value as Json};

use super::context::{check_of, context};
use super::{StepEnd, StepResult};
use crate::error::SourceError;
use crate::executor::state::HostState;
use crate::executor::vars::Layer;
use crate::executor::PlayEnv;
use crate::modules::StepError;
use crate::playbook::Task;
use crate::report::{Event, Status};
use crate::template::Vars;

/// Reports the step and updates the host's state.
pub(super) fn finish(env: &PlayEnv, host: &str, task: &Task, state: &mut HostState, r: StepResult, item: Option<Json>, started: Instant) -> StepEnd {
    let registered = registered(task, &r);
    if item.is_none() {
        if let Some(reg) = &task.register {
            let v = Json::Object(registered.clone());
            env.sources.publish(host, reg, &v);
            state.vars.insert(reg.clone(), v);
        }
        if r.status == Status::Failed && !task.ignores_errors() {
            state.last_failed = Some((task.display_name(), Json::Object(registered)));
        }
    }
    let facts_to = keep_facts(env, host, task, state, &r);
    keep_values(env, host, task, state, &r, facts_to.is_none());
    if check_of(env, task) && (r.status == Status::Changed || r.would_run) {
        state.planned_changes += 1;
    }
    if r.status == Status::Changed {
        notify(env, host, task, state);
    }
    report(env, host, task, state, r, item, started)
}

/// The result as `register` keeps it, with what ansible-core adds.
pub(super) fn registered(task: &Task, r: &StepResult) -> serde_json::Map<String, Json> {
    let mut registered = r.result.clone();
    if task.async_secs.is_some() && r.executed {
        // What ansible-core's async wrapper adds to a result it polled to the end.
        registered.entry("ansible_job_id").or_insert(json!(format!("j{}.{}", uuid::Uuid::new_v4().as_u128() % 1_000_000_000_000, std::process::id())));
        registered.entry("started").or_insert(json!(true));
        registered.entry("finished").or_insert(json!(true));
    }
    registered.insert("changed".into(), json!(r.status == Status::Changed || r.failed_changed));
    registered.insert("failed".into(), json!(r.status == Status::Failed));
    if r.status == Status::Skipped {
        registered.insert("skipped".into(), json!(true));
    }
    if let Some(m) = &r.msg {
        registered.entry("msg").or_insert(json!(m));
    }
    registered
}

/// The facts a step returned, kept for its host (or, with `delegate_facts`, the delegated
/// host's); returns the host they went to when that is another.
fn keep_facts(env: &PlayEnv, host: &str, task: &Task, state: &mut HostState, r: &StepResult) -> Option<String> {
    // `delegate_facts: true` with `delegate_to`: the facts are the delegated host's.
    let facts_to = if task.delegate_facts { state.delegated_to.take().filter(|d| d != host) } else { None };
    let facts_module = !matches!(task.module.as_str(), "set_fact" | "include_vars");
    let ok = matches!(r.status, Status::Ok | Status::Changed);
    let Some(Json::Object(facts)) = r.result.get("ansible_facts").filter(|_| ok) else { return facts_to };
    let plain = |facts: &serde_json::Map<String, Json>| facts.iter().map(|(k, v)| (k.strip_prefix("ansible_").unwrap_or(k).to_string(), v.clone())).collect::<Vec<_>>();
    match &facts_to {
        Some(to) if task.module == "setup" || task.module == "gather_facts" => {
            let mut all = env.sources.fact_map(to);
            all.extend(plain(facts));
            env.sources.record_facts(to, all, &Default::default());
        }
        Some(to) => env.sources.delegate_vars(to, facts),
        None if facts_module => {
            // Gathered again, the facts replace the old ones (a filtered gather adds to them).
            let mut all = env.sources.fact_map(host);
            all.extend(plain(facts));
            // Another module's facts are also variables of their own names, as in ansible-core.
            if task.module != "setup" {
                state.module_facts.extend(facts.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
            state.gathered = true;
            env.sources.record_facts(host, all, &state.module_facts);
        }
        None => {}
    }
    facts_to
}

/// `include_vars` and `set_fact` values published for the host; a `backup` step's record kept.
fn keep_values(env: &PlayEnv, host: &str, task: &Task, state: &mut HostState, r: &StepResult, own: bool) {
    let facts = match r.result.get("ansible_facts") {
        Some(Json::Object(f)) if own && r.status == Status::Ok => Some(f),
        _ => None,
    };
    let secret_values = |vars: &serde_json::Map<String, Json>| vars.iter().filter(|(k, _)| crate::secrets::is_secret_name(k)).filter_map(|(_, v)| v.as_str().map(str::to_string)).collect::<Vec<_>>();
    match (task.module.as_str(), facts) {
        ("include_vars", Some(vars)) => {
            for (k, v) in vars {
                env.sources.publish(host, k, v);
            }
            crate::secrets::add(secret_values(vars));
            // Set again by include_vars, a name is no longer the set_fact value of before.
            for k in vars.keys() {
                state.vars.shift_remove(k);
            }
            state.included.extend(vars.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        ("set_fact", Some(vars)) => {
            for (k, v) in vars {
                env.sources.publish(host, k, v);
            }
            crate::secrets::add(secret_values(vars));
            state.vars.extend(vars.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        _ => {}
    }
    if task.module == "backup" && r.status == Status::Changed {
        if let Some(b) = r.result.get("backup") {
            if let Ok(record) = serde_json::from_value::<crate::safety::backup::BackupRecord>(b.clone()) {
                env.reporter.emit(Event::Backup { host: host.to_string(), task: task.display_name(), backup: b.clone() });
                state.backups.push(record);
            }
        }
    }
}

/// A changed step notifies its handlers (`notify: "restart {{ svc }}"`: by the name its
/// variables give).
fn notify(env: &PlayEnv, host: &str, task: &Task, state: &mut HostState) {
    for n in &task.notify {
        let n = if crate::template::is_template(n) {
            let ctx = context(env, host, task, state, &[]);
            env.sources.templates.render_str(n, &ctx, &task.span).unwrap_or_else(|_| n.clone())
        } else {
            n.clone()
        };
        if !state.notified.contains(&n) {
            state.notified.push(n);
        }
    }
}

/// The step's event, with what `no_log` hides hidden; whether the host goes on.
fn report(env: &PlayEnv, host: &str, task: &Task, state: &HostState, r: StepResult, item: Option<Json>, started: Instant) -> StepEnd {
    let output = display_output(env, task, &r);
    let ignored = r.status == Status::Failed && task.ignores_errors();
    let hides = task.hides();
    env.reporter.emit(Event::Task {
        host: host.to_string(),
        task: display_name(env, host, task, state, item.as_ref()),
        status: r.status,
        msg: if hides { r.msg.map(|_| "(output hidden by no_log)".into()) } else { r.msg },
        // no_log: what a step would change (its command, its content) is hidden too; a
        // destructive step still says its tier.
        changes: if hides { hidden_changes(r.changes) } else { r.changes },
        // A destructive step's diff was shown in its preview already.
        diff: if hides || task.diff == Some(false) || r.result.contains_key("approved_by") { None } else { r.diff },
        note: if hides { r.note.map(|_| "(hidden by no_log)".into()) } else { r.note },
        item: if hides { item.map(|_| Json::String("(hidden by no_log)".into())) } else { item },
        output: if hides { None } else { output },
        ignored,
        failed_changed: r.failed_changed,
        check: check_of(env, task),
        duration_ms: started.elapsed().as_millis() as u64,
    });
    match r.status {
        Status::Failed if !ignored => StepEnd::Failed,
        Status::Unreachable if task.ignore_unreachable == Some(true) => StepEnd::Continue,
        Status::Unreachable => StepEnd::Unreachable,
        Status::Refused => StepEnd::Refused,
        _ => StepEnd::Continue,
    }
}

/// A result that says it failed (a command's non-zero exit) is a failed step, its message
/// naming the command, its exit code and its stderr's tail.
pub(super) fn failed_by_result(host: &str, mut r: StepResult) -> StepResult {
    if r.result.get("failed").and_then(Json::as_bool) == Some(true) {
        r.status = Status::Failed;
        let cmd = r.result.get("cmd").and_then(Json::as_str).unwrap_or_default();
        let rc = r.result.get("rc").cloned().unwrap_or(Json::Null);
        let err = r.result.get("stderr").and_then(Json::as_str).unwrap_or_default();
        let tail: String = err.lines().rev().take(5).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
        r.msg = Some(format!("host {host}: `{cmd}` exited {rc}{}", if tail.is_empty() { String::new() } else { format!(": {tail}") }));
    }
    r
}

/// A step refused by the safety policy before it changed anything.
pub(super) fn refused(msg: String) -> StepResult {
    StepResult { msg: Some(msg), executed: false, ..StepResult::new(Status::Refused) }
}

pub(super) fn input_failure(e: SourceError) -> StepResult {
    StepResult { hard: true, ..StepResult::failed(e.to_string(), Default::default()) }
}

/// A step cancelled by an interrupt before its action started.
pub(super) fn not_started(host: &str, task: &Task, backup: Option<String>) -> StepResult {
    let kept = backup.map(|b| format!("; the backup {b} is kept")).unwrap_or_default();
    StepResult {
        msg: Some(format!("host {host}: interrupted before '{}' started: it did not run{kept}", task.display_name())),
        executed: false,
        note: Some("not started (interrupted)".into()),
        ..StepResult::new(Status::Refused)
    }
}

pub(super) fn from_error(e: StepError) -> StepResult {
    let become_failed = matches!(&e, StepError::Failed { msg, .. } if msg.starts_with("cannot become"));
    let mut r = from_error_inner(e);
    r.hard |= become_failed;
    r
}

fn from_error_inner(e: StepError) -> StepResult {
    match e {
        StepError::Failed { msg, result } => {
            let mut res = result.as_object().cloned().unwrap_or_default();
            // A result that carries its own `msg` (a module's, as ansible-core registers it)
            // keeps it; the step's message (which names the host) is shown.
            res.entry("msg").or_insert_with(|| json!(msg));
            // A backup that failed protects the data by stopping the host: refused, not failed.
            let refused = res.get("backup_failed").and_then(Json::as_bool) == Some(true);
            let mut r = StepResult::failed(msg, res);
            if refused {
                r.status = Status::Refused;
            }
            r
        }
        StepError::Unreachable(msg) => StepResult { msg: Some(msg), ..StepResult::new(Status::Unreachable) },
        StepError::Input(e) => input_failure(e),
    }
}

/// A no_log step's changes as shown: each hidden, a destructive one's tier kept.
fn hidden_changes(changes: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = changes
        .iter()
        .map(|c| match c.strip_prefix("DESTRUCTIVE [").and_then(|r| r.split_once(']')) {
            Some((tier, _)) => format!("DESTRUCTIVE [{tier}]: (details hidden by no_log)"),
            None => "(change hidden by no_log)".to_string(),
        })
        .collect();
    out.dedup();
    out
}

/// The task's name as Ansible shows it: templates in it rendered (the raw name if they cannot be).
fn display_name(env: &PlayEnv, host: &str, task: &Task, state: &HostState, item: Option<&Json>) -> String {
    let name = task.display_name();
    if !crate::template::is_template(&name) {
        return name;
    }
    let mut layer = Vars::new();
    if let Some(i) = item {
        layer.insert(task.loop_var.clone(), i.clone());
    }
    let ctx = context(env, host, task, state, &[Layer::Data(&layer)]);
    env.sources.templates.render_str(&name, &ctx, &task.span).unwrap_or(name)
}

/// What to print under the line: debug output, and a diagnostic's stdout.
fn display_output(env: &PlayEnv, task: &Task, r: &StepResult) -> Option<Json> {
    if task.module == "debug" && r.status == Status::Ok {
        return r.result.get("msg").cloned().or_else(|| Some(Json::Object(r.result.clone())));
    }
    // As Ansible's output: a passing assert says so.
    if task.module == "assert" && r.status == Status::Ok {
        return r.result.get("msg").cloned();
    }
    // A diagnostic's output is the plan's evidence in a dry-run; in a real run it shows with -v.
    if task.read_only && r.executed && (env.check || env.reporter.verbosity() > 0) {
        let out = r.result.get("stdout").and_then(Json::as_str)?.trim_end();
        if out.is_empty() {
            return None;
        }
        let lines: Vec<&str> = out.lines().collect();
        let shown = if lines.len() > 10 { format!("... ({} lines above)\n{}", lines.len() - 10, lines[lines.len() - 10..].join("\n")) } else { out.to_string() };
        return Some(Json::String(shown));
    }
    None
}
