//! Stage 1: a task becomes its steps. `--step` asks first; `run_once` (and ansible-core's
//! once-per-play actions) run on one host for all; `throttle` bounds how many hosts are in it
//! at once; a loop's items are each one step, reported one by one and registered together.

use std::time::Instant;

use serde_json::{json, Value as Json};

use super::context::{check_of, context, loop_items, resolve_flags};
use super::record::{finish, input_failure};
use super::{conditions, interrupted, StepEnd, StepResult};
use crate::executor::state::HostState;
use crate::executor::vars::Layer;
use crate::executor::PlayEnv;
use crate::playbook::Task;
use crate::report::{Event, Status};
use crate::template::Vars;
use crate::transport::Connection;

/// Runs `task` on `host`, reports it, updates `state`.
pub async fn run_task(env: &PlayEnv, host: &str, conn: &Connection, task: &Task, state: &mut HostState) -> StepEnd {
    // linear: every host of the batch is done with the steps before this one.
    let _pass = match &env.gate {
        Some(g) => Some(g.arrive(host, state.place.clone()).await),
        None => None,
    };
    let resolved;
    let task = if task.has_templated_flags() {
        match resolve_flags(env, host, task, state) {
            Ok(t) => {
                resolved = t;
                &resolved
            }
            Err(e) => return finish(env, host, task, state, input_failure(e), None, Instant::now()),
        }
    } else {
        task
    };
    if !step_prompt(env, task).await {
        return StepEnd::Continue;
    }
    // add_host and pause run once for the play, as ansible-core's BYPASS_HOST_LOOP actions.
    let once = task.run_once.as_ref().and_then(crate::playbook::Flag::fixed);
    if once == Some(true) || matches!(task.module.as_str(), "add_host" | "pause") && once.is_none() {
        return run_once(env, host, conn, task, state).await;
    }
    let _throttle = throttle(env, task).await;
    let started = Instant::now();
    env.reporter.busy(host, &task.display_name());
    if !env.check {
        env.reporter.emit(Event::TaskStart { host: host.to_string(), task: task.display_name() });
    }
    let base = context(env, host, task, state, &[]);
    let Some((items_raw, span)) = &task.loop_items else {
        let r = conditions::one(env, host, conn, task, &base, state).await;
        return finish(env, host, task, state, r, None, started);
    };
    let items = match loop_items(env, items_raw, span, &base) {
        Ok(Json::Array(items)) => items,
        Ok(Json::Null) => Vec::new(),
        Ok(other) => {
            let r = StepResult::failed(format!("{span}: `loop` must give a list, got {other}"), Default::default());
            return finish(env, host, task, state, r, None, started);
        }
        // As ansible-core: a loop that cannot be evaluated (a variable it names is undefined)
        // fails only if the task's `when` holds without an item; a false one skips the task.
        Err(e) => {
            let r = match conditions::when_without_item(env, task, &base) {
                Some(skipped) => skipped,
                None => input_failure(e),
            };
            return finish(env, host, task, state, r, None, started);
        }
    };
    if items.is_empty() {
        // As Ansible: a loop over nothing is one skipped task.
        let mut r = StepResult::new(Status::Skipped);
        r.executed = false;
        r.note = Some("skipped: the loop has no items".into());
        r.result.insert("skipped_reason".into(), json!("No items in the list"));
        r.result.insert("results".into(), json!([]));
        return finish(env, host, task, state, r, None, started);
    }
    run_items(env, host, conn, task, state, &items).await
}

/// `--step`: asked once per task for every host; `n` skips it without a word, as
/// ansible-playbook does. True: run it.
async fn step_prompt(env: &PlayEnv, task: &Task) -> bool {
    let Some(sp) = &env.step else { return true };
    if sp.go_on.load(std::sync::atomic::Ordering::SeqCst) {
        return true;
    }
    let Some(cell) = sp.answers.lock().ok().map(|mut m| m.entry(task.span.to_string()).or_default().clone()) else { return true };
    *cell
        .get_or_init(|| async {
            let mut answer = true;
            tokio::task::block_in_place(|| {
                env.reporter.pause(&mut || {
                    answer = loop {
                        eprint!("Perform task: TASK: {} (N)o/(y)es/(c)ontinue: ", task.display_name());
                        let _ = std::io::Write::flush(&mut std::io::stderr());
                        let mut line = String::new();
                        if std::io::BufRead::read_line(&mut std::io::stdin().lock(), &mut line).unwrap_or(0) == 0 {
                            break false;
                        }
                        match line.trim().to_lowercase().as_str() {
                            "y" | "yes" => break true,
                            "" | "n" | "no" => break false,
                            "c" | "continue" => {
                                sp.go_on.store(true, std::sync::atomic::Ordering::SeqCst);
                                break true;
                            }
                            _ => continue,
                        }
                    };
                })
            });
            answer
        })
        .await
}

/// `throttle: N`: at most N hosts in this task at once (the others wait for a permit).
async fn throttle(env: &PlayEnv, task: &Task) -> Option<tokio::sync::OwnedSemaphorePermit> {
    let n = task.throttle.filter(|n| *n > 0)?;
    let sem = env.throttles.lock().ok().map(|mut m| m.entry(task.span.to_string()).or_insert_with(|| std::sync::Arc::new(tokio::sync::Semaphore::new(n as usize))).clone())?;
    sem.acquire_owned().await.ok()
}

/// A loop's items, each a step reported on its own; the task's registered result holds them all.
async fn run_items(env: &PlayEnv, host: &str, conn: &Connection, task: &Task, state: &mut HostState, items: &[Json]) -> StepEnd {
    let mut results = Vec::new();
    let mut end = StepEnd::Continue;
    let mut any_changed = false;
    let mut statuses = Vec::new();
    for (index, item) in items.iter().enumerate() {
        if interrupted(env) {
            break;
        }
        if let Some(p) = task.loop_control.pause.filter(|_| index > 0) {
            tokio::time::sleep(std::time::Duration::from_secs_f64(p)).await;
        }
        let layer = loop_layer(task, items, index);
        let ctx = context(env, host, task, state, &[Layer::Data(&layer)]);
        let mut r = conditions::one(env, host, conn, task, &ctx, state).await;
        // The label, rendered as ansible-core renders it: with this item's result under the
        // register name; one it cannot render fails the item.
        let shown = match &task.loop_control.label {
            Some(l) => {
                let mut with_result = layer.clone();
                if let Some(reg) = &task.register {
                    with_result.insert(reg.clone(), Json::Object(super::record::registered(task, &r)));
                }
                let lctx = context(env, host, task, state, &[Layer::Data(&with_result)]);
                match env.sources.templates.render_str(l, &lctx, &task.span) {
                    Ok(s) => Json::String(s),
                    Err(e) => {
                        let msg = format!("Failed to template loop_control.label: {}", e.message);
                        r.result.insert("failed".into(), json!(true));
                        r.result.insert("msg".into(), json!(msg));
                        r.status = Status::Failed;
                        r.msg = Some(msg);
                        item.clone()
                    }
                }
            }
            None => item.clone(),
        };
        // Each item's result as ansible-core keeps it: with its own changed, failed, skipped.
        let mut entry = super::record::registered(task, &r);
        entry.insert(task.loop_var.clone(), item.clone());
        entry.insert("ansible_loop_var".into(), json!(task.loop_var));
        if let Some(i) = &task.loop_control.index_var {
            entry.insert(i.clone(), json!(index));
            entry.insert("ansible_index_var".into(), json!(i));
        }
        any_changed |= r.status == Status::Changed || r.failed_changed;
        statuses.push(r.status);
        results.push(Json::Object(entry));
        let e = finish(env, host, task, state, r, Some(shown), Instant::now());
        if e != StepEnd::Continue {
            end = e;
            break;
        }
        match break_when(env, host, task, state, items, index, results.last()) {
            Ok(false) => {}
            Ok(true) => break,
            Err(e) => {
                end = e;
                break;
            }
        }
    }
    env.reporter.count_loop(host, &statuses, task.ignores_errors(), any_changed);
    let all = json!({ "results": results, "changed": any_changed, "failed": end != StepEnd::Continue, "msg": if end != StepEnd::Continue { "One or more items failed" } else { "All items completed" } });
    if end == StepEnd::Failed {
        state.last_failed = Some((task.display_name(), all.clone()));
    }
    if let Some(reg) = &task.register {
        env.sources.publish(host, reg, &all);
        state.vars.insert(reg.clone(), all);
    }
    end
}

/// `loop_control.break_when` after item `index`: with the item, and its result under the
/// register name. `Ok(true)`: stop the loop; `Err`: a condition failed (reported).
fn break_when(env: &PlayEnv, host: &str, task: &Task, state: &HostState, items: &[Json], index: usize, last: Option<&Json>) -> Result<bool, StepEnd> {
    if task.loop_control.break_when.is_empty() {
        return Ok(false);
    }
    let mut layer = loop_layer(task, items, index);
    if let (Some(reg), Some(last)) = (&task.register, last) {
        layer.insert(reg.clone(), last.clone());
    }
    let ctx = context(env, host, task, state, &[Layer::Data(&layer)]);
    let mut stop = true;
    for c in &task.loop_control.break_when {
        match env.sources.templates.eval_bool(&c.expr, &ctx, &c.span) {
            Ok(b) => stop &= b,
            Err(e) => {
                env.reporter.emit(Event::Task {
                    host: host.to_string(),
                    task: task.display_name(),
                    status: Status::Failed,
                    msg: Some(e.to_string()),
                    changes: Vec::new(),
                    diff: None,
                    note: None,
                    item: None,
                    output: None,
                    ignored: false,
                    failed_changed: false,
                    check: check_of(env, task),
                    duration_ms: 0,
                });
                return Err(StepEnd::Failed);
            }
        }
    }
    Ok(stop)
}

/// `run_once`: the first host to reach the task runs it; the others wait for it and take its
/// registered result and facts, as Ansible gives them to every host of the play.
fn run_once<'a>(env: &'a PlayEnv, host: &'a str, conn: &'a Connection, task: &'a Task, state: &'a mut HostState) -> std::pin::Pin<Box<dyn std::future::Future<Output = StepEnd> + Send + 'a>> {
    Box::pin(async move {
        let key = task.span.to_string();
        let cell = {
            let Ok(mut m) = env.once.lock() else { return StepEnd::Failed };
            m.entry(key).or_default().clone()
        };
        // linear: the first host of the batch at this step runs it; the others wait for it
        // (unless it moved on without running it).
        if let Some(g) = &env.gate {
            let place = state.place.clone();
            if let Some(leader) = g.leader(&place).filter(|l| l != host) {
                while cell.get().is_none() && g.still_at(&leader, &place) {
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            }
        }
        let mut ran = None;
        let shared = cell
            .get_or_init(|| async {
                let before = state.vars.clone();
                let mut once = task.clone();
                once.run_once = Some(crate::playbook::Flag::Fixed(false));
                let end = run_task(env, host, conn, &once, state).await;
                let changed: serde_json::Map<String, Json> = state.vars.iter().filter(|(k, v)| before.get(*k) != Some(*v)).map(|(k, v)| (k.clone(), v.clone())).collect();
                ran = Some(end);
                json!({ "vars": changed, "failed": end != StepEnd::Continue })
            })
            .await;
        if let Some(end) = ran {
            return end;
        }
        if let Some(Json::Object(vars)) = shared.get("vars") {
            for (k, v) in vars {
                env.sources.publish(host, k, v);
            }
            state.vars.extend(vars.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        StepEnd::Continue
    })
}

/// The loop variable of item `index`, with `index_var` and `ansible_loop` (`extended`).
fn loop_layer(task: &Task, items: &[Json], index: usize) -> Vars {
    let count = items.len();
    let mut layer = Vars::new();
    layer.insert(task.loop_var.clone(), items[index].clone());
    // ansible-core names the loop's variables for the task: `ansible_loop_var`, `ansible_index_var`.
    layer.insert("ansible_loop_var".into(), json!(task.loop_var));
    if let Some(i) = &task.loop_control.index_var {
        layer.insert(i.clone(), json!(index));
        layer.insert("ansible_index_var".into(), json!(i));
    }
    if task.loop_control.extended {
        // As ansible-core: the first item has no `previtem` and the last no `nextitem`
        // (undefined, not null).
        let mut l = json!({
            "allitems": items, "index": index + 1, "index0": index, "revindex": count - index, "revindex0": count - index - 1,
            "first": index == 0, "last": index + 1 == count, "length": count,
        });
        if index > 0 {
            l["previtem"] = items[index - 1].clone();
        }
        if let Some(n) = items.get(index + 1) {
            l["nextitem"] = n.clone();
        }
        layer.insert("ansible_loop".into(), l);
    }
    layer
}
