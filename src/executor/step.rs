//! One task on one host: loop, `when`, render arguments, plan, then (unless
//! dry-run) apply; then `changed_when`/`failed_when`, `register`, `set_fact`,
//! `notify`. Every outcome is reported as an event.

use std::time::Instant;

use minijinja::Value;
use serde_json::{json, Value as Json};

use super::vars::Layer;
use super::PlayEnv;
use crate::error::SourceError;
use crate::modules::{self, StepCtx, StepError};
use crate::playbook::Task;
use crate::report::{Event, Status};
use crate::template::Vars;
use crate::transport::Connection;

/// What a host keeps between tasks: facts, registered results, notified handlers.
#[derive(Default)]
pub struct HostState {
    pub vars: Vars,
    pub notified: Vec<String>,
    /// Verified backups taken on this host in this run.
    pub backups: Vec<crate::safety::backup::BackupRecord>,
    /// In a dry-run: how many steps so far would have changed this host.
    pub planned_changes: usize,
    /// Whether this host gathered its facts in this run (`setup`); the facts themselves are
    /// the run's (`VarSources::fact_map`).
    pub gathered: bool,
    /// Facts other modules returned (`getent_passwd`), under their own names as variables.
    pub module_facts: serde_json::Map<String, Json>,
    /// The last task that failed here, and its result: `ansible_failed_task` / `_result`.
    pub last_failed: Option<(String, Json)>,
    /// Variables from `include_vars` (templates, rendered when used).
    pub included: Vars,
    /// How many blocks with a `rescue:` the host is in (a failure there is not fatal).
    pub rescuable: usize,
    /// The host went unreachable because a host it delegated to was.
    pub delegate_unreachable: bool,
    /// `--start-at-task`: the host reached the task to start at.
    pub started: bool,
    /// Saved plans: how many steps of each name the host reached (a step's key), how many
    /// changes `apply` made here, and why the host no longer fits its plan.
    pub plan_seen: std::collections::HashMap<String, usize>,
    pub plan_applied: usize,
    pub plan_stale: Option<String>,
    /// Handlers of roles this host included (`include_role`), in the order they came.
    pub handlers: Vec<Task>,
    /// The play's templated `vars_files`, as found for this host (above the play's vars).
    pub vars_files: Vars,
    /// Where the host is in the play (see `linear::Place`).
    pub place: Vec<u32>,
    /// The host the current step was delegated to (rendered), for `delegate_facts`.
    pub delegated_to: Option<String>,
    /// Defaults and vars of roles included with `public: true`, for the tasks after them.
    pub public_defaults: Vars,
    pub public_vars: Vars,
    /// The backup root found for each user steps ran as here (`""`: the login user), when
    /// `recover_backup_root` is not set: see `guard::backup_root_for`.
    pub backup_roots: std::collections::HashMap<String, String>,
}

/// The context of a step of `task` on `host`: the play's layers, the host's facts,
/// `include_vars`, set_fact and registered results, the task's vars, then `extra`.
pub(super) fn context(env: &PlayEnv, host: &str, task: &Task, state: &HostState, extra: &[Layer<'_>]) -> Value {
    let merged;
    let defaults = match (&task.defaults, state.public_defaults.is_empty()) {
        (None, true) => &env.play.role_defaults,
        (d, _) => {
            let mut m = env.play.role_defaults.clone();
            m.extend(state.public_defaults.iter().map(|(k, v)| (k.clone(), v.clone())));
            m.extend(d.iter().flat_map(|d| d.iter()).map(|(k, v)| (k.clone(), v.clone())));
            merged = m;
            &merged
        }
    };
    let mut magic = Vars::new();
    if let (Some(name), Some(dir)) = (task.role_name(), &task.role_dir) {
        magic.insert("role_name".into(), json!(name));
        magic.insert("ansible_role_name".into(), json!(name));
        magic.insert("role_path".into(), json!(dir.display().to_string()));
        magic.insert("ansible_search_path".into(), json!([dir.display().to_string(), env.playbook_dir.display().to_string()]));
    } else {
        magic.insert("ansible_search_path".into(), json!([env.playbook_dir.display().to_string()]));
    }
    // Ansible's order, lowest first: role and block vars, task vars, include_vars, set_fact
    // and registered results.
    // (The facts are served under all of these by the context itself: see VarSources::set_facts.)
    // set_fact of other hosts' tasks delegated here with `delegate_facts` (below its own).
    let given = env.sources.delegated_vars(host).unwrap_or_default();
    let mut layers = vec![Layer::Templates(&state.vars_files), Layer::Templates(&env.play.role_vars), Layer::Templates(&state.public_vars), Layer::Templates(&task.scope_vars), Layer::Templates(&task.vars), Layer::Templates(&state.included), Layer::Data(&given), Layer::Data(&state.vars), Layer::Data(&magic)];
    layers.extend(extra.iter().map(|l| match l {
        Layer::Data(v) => Layer::Data(v),
        Layer::Templates(v) => Layer::Templates(v),
    }));
    env.sources.context(host, &env.play_hosts, defaults, &env.play.vars, &layers)
}

/// The play's templated `vars_files` for `host` (after its facts): each entry's first name
/// that renders and names a file, read in order; `Err` names the entry none of whose names did.
pub(super) fn load_vars_files(env: &PlayEnv, host: &str, state: &mut HostState) -> Result<(), SourceError> {
    let task = Task::synthetic("vars_files", "debug", json!({}), env.play.span.clone());
    for vf in &env.play.vars_files {
        let ctx = context(env, host, &task, state, &[]);
        let mut found = None;
        let mut tried = Vec::new();
        for n in &vf.names {
            // As ansible-core 2.19: a name that cannot be rendered is an error.
            let name = env.sources.templates.render_str(n, &ctx, &vf.span)?;
            let p = vf.dir.join(&name);
            if p.is_file() {
                found = Some(p);
                break;
            }
            tried.push(p.display().to_string());
        }
        let p = found.ok_or_else(|| SourceError::new(vf.span.clone(), format!("vars_files: none of these files exists for host {host}: {}", tried.join(", "))))?;
        let loaded = crate::yaml::load_file(&p)?;
        let Some(map) = loaded.as_map() else {
            return Err(SourceError::new(crate::error::Span::file(&p), "a vars file must be a mapping of variable names to values"));
        };
        for (k, v) in map {
            let key = k.scalar_string().unwrap_or_default();
            state.vars_files.insert(key, v.to_json());
        }
    }
    Ok(())
}

/// A task whose `ignore_errors`, `no_log` or `check_mode` are templates, with them evaluated
/// for this host.
fn resolve_flags(env: &PlayEnv, host: &str, task: &Task, state: &HostState) -> Result<Task, SourceError> {
    use crate::playbook::Flag;
    let ctx = context(env, host, task, state, &[]);
    let mut t = task.clone();
    for f in [&mut t.ignore_errors, &mut t.no_log, &mut t.check_mode, &mut t.r#become, &mut t.run_once] {
        if let Some(Flag::Expr(c)) = f {
            let v = env.sources.templates.eval_bool(&c.expr, &ctx, &c.span)?;
            *f = Some(Flag::Fixed(v));
        }
    }
    Ok(t)
}

/// Whether this task runs as a dry-run: `--check`, unless the task's `check_mode` says otherwise.
pub(super) fn check_of(env: &PlayEnv, task: &Task) -> bool {
    match &task.check_mode {
        Some(crate::playbook::Flag::Fixed(b)) => *b,
        _ => env.check,
    }
}

/// The loop's items: `loop:`/`with_items:` rendered, or a `with_<lookup>`'s results.
fn loop_items(env: &PlayEnv, raw: &Json, span: &crate::error::Span, ctx: &Value) -> Result<Json, SourceError> {
    let t = &env.sources.templates;
    let Some(kind) = raw.get("__with").and_then(Json::as_str) else {
        return t.render_value(raw, ctx, span);
    };
    let terms = t.render_value(raw.get("terms").unwrap_or(&Json::Null), ctx, span)?;
    // Ansible's listify: one term is a list of one.
    let terms = match terms {
        Json::Array(a) => a,
        Json::Null => return Ok(json!([])),
        other => vec![other],
    };
    let kind = match kind {
        "list" => return Ok(Json::Array(terms)),
        "flattened" => "items",
        "cartesian" => "nested",
        k => k,
    };
    let mut vars = Vars::new();
    vars.insert("__recover_terms".into(), Json::Array(terms.clone()));
    let args: Vec<String> = (0..terms.len()).map(|i| format!("__recover_terms[{i}]")).collect();
    let expr = format!("query('{kind}'{}{})", if args.is_empty() { "" } else { ", " }, args.join(", "));
    let over = Value::from_object(Overlay { top: env.sources.templates.context(vars), base: ctx.clone() });
    let v = t.eval(&expr, &over).map_err(|e| crate::template::located(&e, span))?;
    crate::template::json_of(&v).map_err(|e| crate::template::located(&e, span))
}

/// Whether the host goes on after a task.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum StepEnd {
    Continue,
    Failed,
    Unreachable,
    Refused,
}

struct StepResult {
    status: Status,
    /// Not the command's own result (a template error, a failed become): `failed_when` cannot clear it.
    hard: bool,
    result: serde_json::Map<String, Json>,
    msg: Option<String>,
    changes: Vec<String>,
    diff: Option<String>,
    note: Option<String>,
    executed: bool,
    /// A failed step that changed something first (Ansible's `changed: true` on a failed result:
    /// a command that ran and exited non-zero). Counted as changed in the recap too.
    failed_changed: bool,
    /// A dry-run step reported skipped as ansible-core's check mode does (a command), whose
    /// plan would still change the host: it counts among the host's planned changes.
    would_run: bool,
}

impl StepResult {
    fn new(status: Status) -> StepResult {
        StepResult { status, hard: false, result: Default::default(), msg: None, changes: Vec::new(), diff: None, note: None, executed: true, failed_changed: false, would_run: false }
    }
    fn failed(msg: String, result: serde_json::Map<String, Json>) -> StepResult {
        StepResult { msg: Some(msg), result, ..StepResult::new(Status::Failed) }
    }
}

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
    // `--step`: asked once per task for every host; `n` skips it without a word, as
    // ansible-playbook does.
    if let Some(sp) = &env.step {
        if !sp.go_on.load(std::sync::atomic::Ordering::SeqCst) {
            let cell = sp.answers.lock().ok().map(|mut m| m.entry(task.span.to_string()).or_default().clone());
            if let Some(cell) = cell {
                let run = *cell
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
                    .await;
                if !run {
                    return StepEnd::Continue;
                }
            }
        }
    }
    // add_host and pause run once for the play, as ansible-core's BYPASS_HOST_LOOP actions.
    let once = task.run_once.as_ref().and_then(crate::playbook::Flag::fixed);
    if once == Some(true) || matches!(task.module.as_str(), "add_host" | "pause") && once.is_none() {
        return run_once(env, host, conn, task, state).await;
    }
    // `throttle: N`: at most N hosts in this task at once (the others wait for a permit).
    let _throttle = match task.throttle.filter(|n| *n > 0) {
        Some(n) => {
            let sem = env.throttles.lock().ok().map(|mut m| m.entry(task.span.to_string()).or_insert_with(|| std::sync::Arc::new(tokio::sync::Semaphore::new(n as usize))).clone());
            match sem {
                Some(s) => s.acquire_owned().await.ok(),
                None => None,
            }
        }
        None => None,
    };
    let started = Instant::now();
    env.reporter.busy(host, &task.display_name());
    if !env.check {
        env.reporter.emit(Event::TaskStart { host: host.to_string(), task: task.display_name() });
    }
    let base = context(env, host, task, state, &[]);
    let Some((items_raw, span)) = &task.loop_items else {
        let r = one(env, host, conn, task, &base, state).await;
        return finish(env, host, task, state, r, None, started);
    };
    let items = match loop_items(env, items_raw, span, &base) {
        Ok(Json::Array(items)) => items,
        Ok(Json::Null) => Vec::new(),
        Ok(other) => {
            let r = StepResult::failed(format!("{span}: `loop` must give a list, got {other}"), Default::default());
            return finish(env, host, task, state, r, None, started);
        }
        Err(e) => return finish(env, host, task, state, input_failure(e), None, started),
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
    let mut results = Vec::new();
    let mut end = StepEnd::Continue;
    let mut any_changed = false;
    let mut statuses = Vec::new();
    let count = items.len();
    for (index, item) in items.iter().cloned().enumerate() {
        if interrupted(env) {
            break;
        }
        if index > 0 {
            if let Some(p) = task.loop_control.pause {
                tokio::time::sleep(std::time::Duration::from_secs_f64(p)).await;
            }
        }
        let layer = loop_layer(task, &items, index, count);
        let ctx = context(env, host, task, state, &[Layer::Data(&layer)]);
        let r = one(env, host, conn, task, &ctx, state).await;
        let mut entry = r.result.clone();
        entry.insert(task.loop_var.clone(), item.clone());
        entry.insert("ansible_loop_var".into(), json!(task.loop_var));
        if let Some(i) = &task.loop_control.index_var {
            entry.insert(i.clone(), json!(index));
            entry.insert("ansible_index_var".into(), json!(i));
        }
        any_changed |= r.status == Status::Changed || r.failed_changed;
        statuses.push(r.status);
        results.push(Json::Object(entry));
        let shown = match &task.loop_control.label {
            Some(l) => match env.sources.templates.render_str(l, &ctx, &task.span) {
                Ok(s) => Json::String(s),
                Err(_) => item.clone(),
            },
            None => item.clone(),
        };
        let e = finish(env, host, task, state, r, Some(shown), Instant::now());
        if e != StepEnd::Continue {
            end = e;
            break;
        }
        // break_when: with the item, and its result under the register name.
        if !task.loop_control.break_when.is_empty() {
            let mut layer = loop_layer(task, &items, index, count);
            if let (Some(reg), Some(last)) = (&task.register, results.last()) {
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
                        end = StepEnd::Failed;
                        stop = true;
                        break;
                    }
                }
            }
            if stop {
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
fn loop_layer(task: &Task, items: &[Json], index: usize, count: usize) -> Vars {
    let mut layer = Vars::new();
    layer.insert(task.loop_var.clone(), items[index].clone());
    if let Some(i) = &task.loop_control.index_var {
        layer.insert(i.clone(), json!(index));
    }
    if task.loop_control.extended {
        layer.insert(
            "ansible_loop".into(),
            json!({
                "allitems": items, "index": index + 1, "index0": index, "revindex": count - index, "revindex0": count - index - 1,
                "first": index == 0, "last": index + 1 == count, "length": count,
                "previtem": if index > 0 { items[index - 1].clone() } else { Json::Null },
                "nextitem": items.get(index + 1).cloned().unwrap_or(Json::Null),
            }),
        );
    }
    layer
}

fn input_failure(e: SourceError) -> StepResult {
    StepResult { hard: true, ..StepResult::failed(e.to_string(), Default::default()) }
}

/// `when`, then the step (again while `until` is false, up to `retries` more times).
async fn one(env: &PlayEnv, host: &str, conn: &Connection, task: &Task, ctx: &Value, state: &mut HostState) -> StepResult {
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
    if let Some(reg) = &task.register {
        layer.insert(reg.clone(), Json::Object(res.clone()));
    }
    layer.extend(res);
    let ctx2 = env.sources.context(host, &env.play_hosts, &env.play.role_defaults, &env.play.vars, &[Layer::Data(&layer)]);
    Value::from_object(Overlay { top: ctx2, base: ctx.clone() })
}

/// `when`, then the step itself, then `changed_when` / `failed_when`.
async fn attempt(env: &PlayEnv, host: &str, conn: &Connection, task: &Task, ctx: &Value, state: &mut HostState) -> StepResult {
    let t = &env.sources.templates;
    for c in &task.when {
        match t.eval_bool(&c.expr, ctx, &c.span) {
            Ok(true) => {}
            Ok(false) => {
                let mut r = StepResult::new(Status::Skipped);
                r.note = Some(format!("skipped: `{}` is false", c.expr));
                r.result.insert("skip_reason".into(), json!("Conditional result was False"));
                r.executed = false;
                return r;
            }
            Err(e) => return input_failure(e),
        }
    }
    let mut r = step(env, host, conn, task, ctx, state).await;
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
    // changed_when / failed_when see the result under the register name, as in Ansible.
    if !task.changed_when.is_empty() || !task.failed_when.is_empty() {
        let ctx2 = result_context(env, host, task, &r, ctx);
        // As Ansible: changed_when decides `changed` (a failed command too), then failed_when
        // decides `failed`; the status follows from both.
        let mut changed = r.status == Status::Changed || (r.status == Status::Failed && (!r.changes.is_empty() || r.result.contains_key("rc")));
        if !task.changed_when.is_empty() {
            match all_true(env, &task.changed_when, &ctx2) {
                Ok(c) => changed = c,
                Err(e) => return input_failure(e),
            }
        }
        let mut failed = r.status == Status::Failed;
        if !task.failed_when.is_empty() {
            // A list of conditions is an `and`, as Ansible reads failed_when and changed_when.
            match all_true(env, &task.failed_when, &ctx2) {
                Ok(true) => {
                    r.msg = r.msg.or_else(|| Some(format!("failed_when is true: {}", task.failed_when.iter().map(|c| c.expr.as_str()).collect::<Vec<_>>().join(" and "))));
                    failed = true;
                }
                Ok(false) => {
                    if failed {
                        r.msg = None;
                    }
                    failed = false;
                }
                Err(e) => return input_failure(e),
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

/// Variables of `top` first, then `base` (for condition contexts).
#[derive(Debug)]
struct Overlay {
    top: Value,
    base: Value,
}

impl minijinja::value::Object for Overlay {
    fn get_value(self: &std::sync::Arc<Self>, key: &Value) -> Option<Value> {
        for v in [&self.top, &self.base] {
            if let Ok(x) = v.get_item(key) {
                if !x.is_undefined() {
                    return Some(x);
                }
            }
        }
        None
    }
}

fn all_true(env: &PlayEnv, conds: &[crate::playbook::Cond], ctx: &Value) -> Result<bool, SourceError> {
    for c in conds {
        if !env.sources.templates.eval_bool(&c.expr, ctx, &c.span)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Renders the arguments: data, except a module's shell arguments (values quoted).
/// The arguments `module_defaults` give this task's module (the innermost mapping wins), for
/// those the task does not set itself.
fn module_defaults(env: &PlayEnv, task: &Task, ctx: &Value) -> Result<serde_json::Map<String, Json>, SourceError> {
    let mut out = serde_json::Map::new();
    for (m, span) in &task.module_defaults {
        let Json::Object(entries) = m else { continue };
        for (name, args) in entries {
            if modules::short_name(name) != task.module {
                continue;
            }
            let args = match args {
                Json::String(s) if crate::template::is_template(s) => env.sources.templates.render_value(args, ctx, span)?,
                other => other.clone(),
            };
            match args {
                Json::Object(a) => out.extend(a),
                Json::Null => {}
                other => return Err(SourceError::new(span.clone(), format!("module_defaults for '{name}' must be a mapping of arguments, got {other}"))),
            }
        }
    }
    Ok(out)
}

fn render_args(env: &PlayEnv, task: &Task, module: &dyn modules::Module, ctx: &Value) -> Result<Json, SourceError> {
    let t = &env.sources.templates;
    let Json::Object(given) = &task.args else { return Ok(task.args.clone()) };
    let mut raw = module_defaults(env, task, ctx)?;
    // `command: x` sets the command itself; a default `cmd`/`argv` does not replace it.
    if given.contains_key("_raw_params") {
        raw.retain(|k, _| !matches!(k.as_str(), "cmd" | "argv"));
    }
    raw.extend(given.iter().map(|(k, v)| (k.clone(), v.clone())));
    let raw = &raw;
    let mut out = serde_json::Map::new();
    for (k, v) in raw {
        let span = task.arg_span(k);
        let rendered = match v {
            Json::String(s) if module.shell_args().contains(&k.as_str()) => Json::String(t.render_shell(s, ctx, &span)?),
            // `command:` as words: one word of the source is one argument (see template::words).
            Json::String(s) if module.name() == "command" && (k == "_raw_params" || k == "cmd") => {
                out.insert("argv".into(), Json::Array(t.render_words(s, ctx, &span)?.into_iter().map(Json::String).collect()));
                continue;
            }
            _ => t.render_value(v, ctx, &span)?,
        };
        if rendered.as_str() != Some(crate::template::OMIT) {
            out.insert(k.clone(), rendered);
        }
    }
    Ok(Json::Object(out))
}

async fn step(env: &PlayEnv, host: &str, conn: &Connection, task: &Task, ctx: &Value, state: &mut HostState) -> StepResult {
    let Some(module) = modules::get(&task.module) else {
        return StepResult::failed(format!("unknown module '{}'", task.module), Default::default());
    };
    // delegate_to: the step runs on that host (its connection, its lock, its backups), with
    // this host's variables.
    let delegated;
    let on_name;
    state.delegated_to = None;
    let (conn, on) = match &task.delegate_to {
        Some(d) => {
            let d = match env.sources.templates.render_str(d, ctx, &task.span) {
                Ok(d) => d,
                Err(e) => return input_failure(e),
            };
            if d != crate::template::OMIT && !d.trim().is_empty() {
                state.delegated_to = Some(d.clone());
            }
            // `delegate_to: "{{ 'localhost' if x else omit }}"`: omitted, the task runs on its host.
            if d == host || d == crate::template::OMIT || d.trim().is_empty() {
                (conn, host)
            } else {
                match super::connect(env, &d, &env.conns).await {
                    Ok(c) => {
                        delegated = c;
                        on_name = d;
                        (&*delegated, on_name.as_str())
                    }
                    Err(super::ConnectError::Unreachable(m)) | Err(super::ConnectError::Locked(m)) => {
                        state.delegate_unreachable = true;
                        return StepResult { msg: Some(format!("delegate_to {d}: {m}")), executed: false, ..StepResult::new(Status::Unreachable) };
                    }
                }
            }
        }
        None => (conn, host),
    };
    if let Some(u) = &task.remote_user {
        let opened = env.opened.lock().ok().and_then(|m| m.get(on).cloned()).and_then(|o| o.0);
        let login = ctx.get_attr("ansible_user").ok().filter(|v| !v.is_undefined()).map(|v| crate::template::pyrepr::py_str(&v));
        if opened.as_deref() != Some(u.as_str()) && login.as_deref() != Some(u.as_str()) {
            return StepResult::failed(format!("host {on}: task-level remote_user '{u}' differs from the user the host is connected as; recover keeps one connection per host (set it on the play or as ansible_user): not supported"), Default::default());
        }
    }
    let args = match render_args(env, task, module, ctx) {
        Ok(a) => a,
        Err(e) => return input_failure(e),
    };
    let (host_become, host_become_user) = super::vars::become_default(ctx);
    let escalate = task.r#become.as_ref().and_then(crate::playbook::Flag::fixed).or(env.play.r#become).unwrap_or(host_become);
    let become_user = match task.become_user.clone().or(env.play.become_user.clone()) {
        Some(u) => match env.sources.templates.render_str(&u, ctx, &task.span) {
            Ok(u) => Some(u),
            Err(e) => return input_failure(e),
        },
        None => host_become_user,
    };
    let become_user = escalate.then(|| become_user.unwrap_or_else(|| "root".into()));
    // A task's (or block's) become_method / _flags / _exe must be its connection's: recover
    // keeps one way of becoming per host (the host's variables win over keywords, as in Ansible).
    if escalate {
        let have = conn.become_settings();
        let kw = &task.become_kw;
        let defined = |k: &str| ctx.get_attr(k).ok().is_some_and(|v| !v.is_undefined() && !v.is_none());
        let checks: [(&str, &Option<String>, String); 3] = [
            ("become_method", &kw.method, have.method.as_str().to_string()),
            ("become_flags", &kw.flags, have.flags.clone().unwrap_or_default()),
            ("become_exe", &kw.exe, have.exe.clone().unwrap_or_else(|| have.method.as_str().to_string())),
        ];
        for (k, want, has) in checks {
            let Some(w) = want else { continue };
            if defined(&format!("ansible_{k}")) {
                continue;
            }
            let w = match env.sources.templates.render_str(w, ctx, &task.span) {
                Ok(w) => w,
                Err(e) => return input_failure(e),
            };
            if w.trim() != has.trim() {
                return StepResult::failed(format!("host {on}: this task's {k} '{w}' differs from the one the host's connection uses ('{has}'); recover keeps one per host: set it on the play, or as ansible_{k}"), Default::default());
            }
        }
    }
    let mut environment: Vec<(String, String)> = Vec::new();
    for (raw, span) in &task.environment {
        match env.sources.templates.render_value(raw, ctx, span) {
            Ok(Json::Object(m)) => {
                for (k, v) in m {
                    if !crate::playbook::is_identifier(&k) {
                        return input_failure(SourceError::new(span.clone(), format!("environment: '{k}' is not a valid variable name")));
                    }
                    let v = match v {
                        Json::String(s) => s,
                        other => crate::template::pyrepr::py_str(&crate::template::to_value(&other)),
                    };
                    environment.retain(|(n, _)| *n != k);
                    environment.push((k, v));
                }
            }
            Ok(Json::Null) => {}
            Ok(other) => return input_failure(SourceError::new(span.clone(), format!("`environment` must be a mapping of names to values, got {other}"))),
            Err(e) => return input_failure(e),
        }
    }
    let sctx = StepCtx {
        environment,
        host: on,
        conn,
        templates: &env.sources.templates,
        run: env,
        backup_root: super::guard::configured_backup_root(ctx),
        vars: ctx,
        become_user,
        check: check_of(env, task),
        task,
        playbook_dir: &env.playbook_dir,
        project_root: &env.project_root,
        // `async: N` bounds the step as its timeout does (the smaller wins).
        timeout: match (task.timeout.or(env.play.timeout), task.async_secs) {
            (Some(t), Some(a)) => Some(t.min(a)),
            (t, a) => t.or(a),
        },
        applying: std::sync::atomic::AtomicBool::new(false),
    };
    // A symbolic mode (`u=rwx,g=rx`) becomes the octal mode it gives this path, as ansible-core.
    let mut args = args;
    if let Err(e) = crate::modules::unbuilt_args::prepare(&sctx, module.name(), &mut args).await {
        return from_error(e);
    }
    if let Err(e) = crate::modules::modes::resolve(&sctx, module.name(), &mut args).await {
        return from_error(e);
    }
    let plan = match module.plan(&sctx, &args).await {
        Ok(p) => p,
        Err(e) => return from_error(e),
    };
    let mut r = StepResult::new(Status::Ok);
    if let Some(reason) = plan.skipped {
        r.status = Status::Skipped;
        r.executed = false;
        r.note = Some(format!("skipped: {reason}"));
        r.result.insert("skipped".into(), json!(true));
        r.result.insert("skipped_reason".into(), json!(reason));
        return r;
    }
    r.note = plan.note.clone();
    r.changes = plan.changes.clone();
    r.diff = plan.diff.as_ref().map(capped_diff);
    // Saved plans: the step's key on the host it runs on, and what it is.
    let planned = env.safety.plan.is_some().then(|| {
        let name = env.sources.templates.render_str(&task.display_name(), ctx, &task.span).unwrap_or_else(|_| task.display_name());
        let key = super::planned::key(env, state, &name);
        (key, super::planned::Seen { host: on, task, name, args: &args, plan: &plan, become_user: sctx.become_user.clone(), services: crate::modules::service::services_of(&sctx) })
    });
    if plan.done {
        if let Some((key, seen)) = &planned {
            let e = super::planned::entry(env, key.clone(), seen, "read", None, state.planned_changes == 0);
            super::planned::check_read(env, on, state, &e);
            super::planned::record(env, e, on);
        }
        drop(planned);
        // Done while planning (read-only modules, add_host): changed only when it says so.
        if plan.changed() {
            r.status = Status::Changed;
        }
        r.result = plan.result;
    } else if check_of(env, task) {
        r.executed = false;
        r.status = if plan.changed() { Status::Changed } else { Status::Ok };
        let kind = if plan.changed() || plan.run_anyway { "change" } else { "ok" };
        // Say which steps are destructive, and how they would be guarded.
        if let Ok(Some(d)) = super::guard::merged(env, task, &plan, ctx) {
            if let Err(msg) = super::guard::check_paths(&sctx, &d, state) {
                return StepResult { msg: Some(msg), executed: false, ..StepResult::new(Status::Refused) };
            }
            let tier = match super::guard::tier_of(env, &sctx, &d) {
                Ok(t) => t,
                Err(e) => return StepResult::failed(e, Default::default()),
            };
            if let Some((key, seen)) = &planned {
                super::planned::record(env, super::planned::entry(env, key.clone(), seen, kind, Some((&d, tier)), state.planned_changes == 0), on);
            }
            let guard = match (&d.preserves, d.paths.is_empty()) {
                (Some(p), _) => format!("preserves the original itself: {p}"),
                (None, true) => "no paths to back up".to_string(),
                (None, false) => format!("a verified backup of {} is taken first", d.paths.join(", ")),
            };
            let need = super::guard::requirement(env, host, &task.display_name(), tier);
            r.changes.insert(0, format!("DESTRUCTIVE [{tier}]: {}; {guard}; {need}", d.reason));
        } else if env.safety.confirmer.policy.automation && !task.read_only {
            let d = automation_step(task, &args);
            let tier = super::guard::tier_of(env, &sctx, &d).unwrap_or(crate::safety::Tier::Block);
            let need = super::guard::requirement(env, host, &task.display_name(), tier);
            r.changes.insert(0, format!("[{tier}] not read-only; under --automation it {need}"));
            if let Some((key, seen)) = &planned {
                super::planned::record(env, super::planned::entry(env, key.clone(), seen, kind, Some((&d, tier)), state.planned_changes == 0), on);
            }
        } else if let Some((key, seen)) = &planned {
            super::planned::record(env, super::planned::entry(env, key.clone(), seen, kind, None, state.planned_changes == 0), on);
        }
        drop(planned);
        r.result = plan.result;
        if plan.check_skip {
            // ansible-core's check mode skips a command it cannot predict; the plan stands.
            r.status = Status::Skipped;
            r.would_run = true;
            r.result.insert("skipped".into(), json!(true));
            r.note = Some("not run in a dry-run (as ansible-core's check mode skips commands)".into());
        }
    } else if plan.changed() || plan.run_anyway {
        r.note = None;
        let destructive = match super::guard::merged(env, task, &plan, ctx) {
            Ok(d) => d,
            Err(e) => return input_failure(e),
        };
        if let Some(d) = &destructive {
            if let Err(msg) = super::guard::check_paths(&sctx, d, state) {
                return StepResult { msg: Some(msg), executed: false, ..StepResult::new(Status::Refused) };
            }
        }
        // Under --automation every step that is not read-only needs the automation policy's
        // word (its tier AUTO, the gate green, no freeze), destructive or not.
        let destructive = match destructive {
            None if env.safety.confirmer.policy.automation && !task.read_only => Some(automation_step(task, &args)),
            d => d,
        };
        // `recover apply`: only the plan's own changes run.
        if let Some((key, seen)) = &planned {
            let tier = match &destructive {
                Some(d) => match super::guard::tier_of(env, &sctx, d) {
                    Ok(t) => Some(t),
                    Err(e) => return StepResult::failed(e, Default::default()),
                },
                None => None,
            };
            let e = super::planned::entry(env, key.clone(), seen, "change", destructive.as_ref().zip(tier), state.planned_changes == 0);
            if let Err(msg) = super::planned::check_change(env, on, state, &e) {
                return StepResult { msg: Some(msg), executed: false, ..StepResult::new(Status::Refused) };
            }
        }
        drop(planned);
        if interrupted(env) {
            return not_started(host, task, None);
        }
        if let Some(d) = destructive {
            match super::guard::guard(env, &sctx, &plan, d, state).await {
                Ok(how) => {
                    // An interrupt that came during the backup or the prompt cancels the step.
                    if interrupted(env) {
                        return not_started(host, task, state.backups.last().map(|b| b.archive.clone()));
                    }
                    r.result.insert("approved_by".into(), json!(how));
                }
                Err(super::guard::Stop::Refused(msg)) => return StepResult { msg: Some(msg), executed: false, ..StepResult::new(Status::Refused) },
                Err(super::guard::Stop::Lost(msg)) => return StepResult { msg: Some(msg), executed: false, ..StepResult::new(Status::Unreachable) },
            }
        }
        // A backup taken for a later step this run cannot approve is not taken.
        if task.module == "backup" {
            if let Some(msg) = super::guard::backup_for_refused_step(env, &sctx, task, &args) {
                return StepResult { msg: Some(msg), executed: false, ..StepResult::new(Status::Refused) };
            }
        }
        sctx.applying.store(true, std::sync::atomic::Ordering::SeqCst);
        state.plan_applied += 1;
        match module.apply(&sctx, plan).await {
            Ok(o) => {
                if task.module == "backup" {
                    if let Some(record) = o.result.get("backup").and_then(|b| serde_json::from_value::<crate::safety::backup::BackupRecord>(b.clone()).ok()) {
                        if let Err(e) = super::guard::copy_home(env, &sctx, &record).await {
                            return StepResult { msg: Some(format!("host {host}: --backup-copy failed: {e}")), ..StepResult::new(Status::Refused) };
                        }
                    }
                }
                r.status = if o.changed { Status::Changed } else { Status::Ok };
                let approved = r.result.remove("approved_by");
                r.result = o.result;
                if let Some(a) = approved {
                    r.result.insert("approved_by".into(), a);
                }
            }
            Err(e) => {
                let mut f = from_error(e);
                f.changes = r.changes;
                return f;
            }
        }
    } else {
        r.result = plan.result;
    }
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

/// The largest diff kept whole in events and the run log.
const DIFF_CAP: usize = 256 * 1024;

/// The unified diff, cut past [`DIFF_CAP`] bytes; a cut diff names the sha256 of both sides.
pub(super) fn capped_diff(d: &modules::FileDiff) -> String {
    use sha2::{Digest, Sha256};
    let text = d.unified();
    if text.len() <= DIFF_CAP {
        return text;
    }
    let mut cut = DIFF_CAP;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let sha = |b: &Option<Vec<u8>>| b.as_ref().map(|b| format!("{:x}", Sha256::digest(b))).unwrap_or_else(|| "(absent)".into());
    format!("{}\n... diff cut at {DIFF_CAP} of {} bytes; before sha256 {}, after sha256 {}\n", &text[..cut], text.len(), sha(&d.before), sha(&d.after))
}

fn interrupted(env: &PlayEnv) -> bool {
    env.safety.interrupted.load(std::sync::atomic::Ordering::SeqCst)
}

/// A step cancelled by an interrupt before its action started.
fn not_started(host: &str, task: &Task, backup: Option<String>) -> StepResult {
    let kept = backup.map(|b| format!("; the backup {b} is kept")).unwrap_or_default();
    StepResult {
        msg: Some(format!("host {host}: interrupted before '{}' started: it did not run{kept}", task.display_name())),
        executed: false,
        note: Some("not started (interrupted)".into()),
        ..StepResult::new(Status::Refused)
    }
}

/// A step that is not read-only, seen by the automation policy: the services it names give its tier.
fn automation_step(task: &Task, args: &Json) -> crate::safety::Destructive {
    let services = match task.module.as_str() {
        "service" | "systemd" => args.get("name").and_then(Json::as_str).map(|s| vec![s.to_string()]).unwrap_or_default(),
        _ => Vec::new(),
    };
    crate::safety::Destructive { reason: format!("{} is not read-only", task.display_name()), services, ..Default::default() }
}

fn from_error(e: StepError) -> StepResult {
    let become_failed = matches!(&e, StepError::Failed { msg, .. } if msg.starts_with("cannot become"));
    let mut r = from_error_inner(e);
    r.hard |= become_failed;
    r
}

fn from_error_inner(e: StepError) -> StepResult {
    match e {
        StepError::Failed { msg, result } => {
            let mut res = result.as_object().cloned().unwrap_or_default();
            res.insert("msg".into(), json!(msg));
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

/// Reports the step and updates the host's state.
fn finish(env: &PlayEnv, host: &str, task: &Task, state: &mut HostState, r: StepResult, item: Option<Json>, started: Instant) -> StepEnd {
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
    if item.is_none() {
        if let Some(reg) = &task.register {
            let v = Json::Object(registered.clone());
            env.sources.publish(host, reg, &v);
            state.vars.insert(reg.clone(), v);
        }
        if r.status == Status::Failed && !task.ignores_errors() {
            state.last_failed = Some((task.display_name(), Json::Object(registered.clone())));
        }
    }
    // `delegate_facts: true` with `delegate_to`: the facts are the delegated host's.
    let facts_to = if task.delegate_facts { state.delegated_to.take().filter(|d| d != host) } else { None };
    let facts_module = !matches!(task.module.as_str(), "set_fact" | "include_vars");
    if let (Some(to), Some(Json::Object(facts)), true) = (&facts_to, r.result.get("ansible_facts"), matches!(r.status, Status::Ok | Status::Changed)) {
        if task.module == "setup" || task.module == "gather_facts" {
            let mut all = env.sources.fact_map(to);
            all.extend(facts.iter().map(|(k, v)| (k.strip_prefix("ansible_").unwrap_or(k).to_string(), v.clone())));
            env.sources.record_facts(to, all, &Default::default());
        } else {
            env.sources.delegate_vars(to, facts);
        }
    } else if facts_module && matches!(r.status, Status::Ok | Status::Changed) {
        if let Some(Json::Object(facts)) = r.result.get("ansible_facts") {
            // Gathered again, the facts replace the old ones (a filtered gather adds to them).
            // What it had (its own, or given by a delegated gather).
            let mut all = env.sources.fact_map(host);
            all.extend(facts.iter().map(|(k, v)| (k.strip_prefix("ansible_").unwrap_or(k).to_string(), v.clone())));
            // Another module's facts are also variables of their own names, as in ansible-core.
            if task.module != "setup" {
                state.module_facts.extend(facts.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
            state.gathered = true;
            env.sources.record_facts(host, all, &state.module_facts);
        }
    }
    if task.module == "include_vars" && r.status == Status::Ok && facts_to.is_none() {
        if let Some(Json::Object(vars)) = r.result.get("ansible_facts") {
            for (k, v) in vars {
                env.sources.publish(host, k, v);
            }
            env.reporter.add_secrets(vars.iter().filter(|(k, _)| crate::report::is_secret_name(k)).filter_map(|(_, v)| v.as_str().map(str::to_string)));
            // Set again by include_vars, a name is no longer the set_fact value of before.
            for k in vars.keys() {
                state.vars.shift_remove(k);
            }
            state.included.extend(vars.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
    }
    if task.module == "backup" && r.status == Status::Changed {
        if let Some(b) = r.result.get("backup") {
            if let Ok(record) = serde_json::from_value::<crate::safety::backup::BackupRecord>(b.clone()) {
                env.reporter.emit(Event::Backup { host: host.to_string(), task: task.display_name(), backup: b.clone() });
                state.backups.push(record);
            }
        }
    }
    if task.module == "set_fact" && r.status == Status::Ok && facts_to.is_none() {
        if let Some(Json::Object(facts)) = r.result.get("ansible_facts") {
            for (k, v) in facts {
                env.sources.publish(host, k, v);
            }
            env.reporter.add_secrets(facts.iter().filter(|(k, _)| crate::report::is_secret_name(k)).filter_map(|(_, v)| v.as_str().map(str::to_string)));
            state.vars.extend(facts.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
    }
    if check_of(env, task) && (r.status == Status::Changed || r.would_run) {
        state.planned_changes += 1;
    }
    if r.status == Status::Changed {
        for n in &task.notify {
            // `notify: "restart {{ svc }}"`: the handler's name as the task's variables give it.
            let n = if crate::template::is_template(n) {
                let ctx = context(env, host, task, state, &[]);
                env.sources.templates.render_str(n, &ctx, &task.span).unwrap_or_else(|_| n.clone())
            } else {
                n.clone()
            };
            let n = &n;
            if !state.notified.contains(n) {
                state.notified.push(n.clone());
            }
        }
    }
    let output = display_output(env, task, &r);
    let ignored = r.status == Status::Failed && task.ignores_errors();
    env.reporter.emit(Event::Task {
        host: host.to_string(),
        task: display_name(env, host, task, state, item.as_ref()),
        status: r.status,
        msg: if task.hides() { r.msg.map(|_| "(output hidden by no_log)".into()) } else { r.msg },
        // no_log: what a step would change (its command, its content) is hidden too; a
        // destructive step still says its tier.
        changes: if task.hides() { hidden_changes(r.changes) } else { r.changes },
        // A destructive step's diff was shown in its preview already.
        diff: if task.hides() || task.diff == Some(false) || r.result.contains_key("approved_by") { None } else { r.diff },
        note: if task.hides() { r.note.map(|_| "(hidden by no_log)".into()) } else { r.note },
        item: if task.hides() { item.map(|_| Json::String("(hidden by no_log)".into())) } else { item },
        output: if task.hides() { None } else { output },
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
