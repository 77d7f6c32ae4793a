//! A host's walk through a play's task tree: tasks, blocks with `rescue`/`always`, includes
//! resolved when they are reached (their file name rendered for this host, the file loaded and
//! checked then), `meta:` and handlers.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;

use serde_json::{json, Value as Json};

use super::state::HostState;
use super::step::{self, StepEnd};
use super::vars::Layer;
use super::PlayEnv;
use crate::playbook::{Include, IncludeKind, Item, Task};
use crate::report::{Event, Status};
use crate::template::Vars;
use crate::transport::Connection;

/// How a task list ended for a host.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Flow {
    Continue,
    Failed,
    Unreachable,
    Refused,
    Interrupted,
    /// `meta: end_host`: this host is done with the play, and that is not a failure.
    EndHost,
    /// `meta: end_play`: every host is done with the play.
    EndPlay,
}

impl From<StepEnd> for Flow {
    fn from(e: StepEnd) -> Flow {
        match e {
            StepEnd::Continue => Flow::Continue,
            StepEnd::Failed => Flow::Failed,
            StepEnd::Unreachable => Flow::Unreachable,
            StepEnd::Refused => Flow::Refused,
        }
    }
}

type Fut<'a> = Pin<Box<dyn Future<Output = Flow> + Send + 'a>>;

/// Runs `items` in order until one ends the host's walk.
pub fn run_items<'a>(env: &'a PlayEnv, host: &'a str, conn: &'a Connection, items: &'a [Item], state: &'a mut HostState) -> Fut<'a> {
    Box::pin(async move {
        let base = state.place.len();
        for (index, item) in items.iter().enumerate() {
            state.place.truncate(base);
            state.place.push(index as u32);
            if env.safety.confirmer.aborted() {
                return Flow::Refused;
            }
            if env.safety.interrupted.load(Ordering::SeqCst) {
                return Flow::Interrupted;
            }
            if env.end_play.load(Ordering::SeqCst) {
                return Flow::EndPlay;
            }
            let flow = match item {
                Item::Task(t) => match task_item(env, host, conn, t, state).await {
                    Some(f) => f,
                    None => continue,
                },
                Item::Block(b) => block_item(env, host, conn, b, state).await,
                Item::Include(inc) => {
                    if !crate::playbook::tags_select(&inc.tags, &env.only_tags, &env.skip_tags) {
                        continue;
                    }
                    // linear: the include is decided once the steps before it are done everywhere.
                    if let Some(g) = &env.gate {
                        drop(g.arrive(host, state.place.clone()).await);
                    }
                    include(env, host, conn, inc, state).await
                }
            };
            state.place.truncate(base);
            if flow != Flow::Continue {
                return flow;
            }
        }
        Flow::Continue
    })
}

/// Reports a line for something that is not a module's step (an include, a `meta:`, a host
/// that cannot start, facts from the run's cache).
pub(super) fn report(env: &PlayEnv, host: &str, task: String, status: Status, msg: Option<String>, note: Option<String>, item: Option<Json>) {
    env.reporter.emit(Event::Task {
        host: host.to_string(),
        task,
        status,
        msg,
        changes: Vec::new(),
        diff: None,
        note,
        item,
        output: None,
        ignored: false,
        failed_changed: false,
        check: env.check,
        duration_ms: 0,
    });
}

fn include_name(inc: &Include) -> String {
    inc.name.clone().unwrap_or_else(|| match &inc.kind {
        IncludeKind::Tasks { .. } => "include_tasks".into(),
        IncludeKind::Role { .. } => "include_role".into(),
    })
}

/// One task of a list: `None` when tags or `--start-at-task` leave it out. Under the linear
/// strategy it waits for the other hosts first; a failure under `any_errors_fatal` that no
/// rescue catches ends the run for every host.
async fn task_item(env: &PlayEnv, host: &str, conn: &Connection, t: &crate::playbook::Task, state: &mut HostState) -> Option<Flow> {
    if !t.selected(&env.only_tags, &env.skip_tags) {
        return None;
    }
    if let (Some(p), false) = (&env.start_at, state.started) {
        if !p.matches(&t.display_name()) {
            return None;
        }
        state.started = true;
    }
    // linear: wait for the other hosts here, then see whether the play ended
    // meanwhile (end_play, any_errors_fatal, max_fail_percentage).
    let _pass = match &env.gate {
        Some(g) if t.module != "meta" => Some(g.arrive(host, state.place.clone()).await),
        _ => None,
    };
    if env.end_play.load(Ordering::SeqCst) {
        return Some(Flow::EndPlay);
    }
    let named;
    let t = if crate::template::is_template(&t.module) {
        // One that names no module fails as the task (its `when`, `ignore_errors`, `register`
        // and rescue apply): a `fail` step with the reason (as data: it quotes the template).
        named = templated_module(env, host, t, state).unwrap_or_else(|msg| Task { module: "fail".into(), args: json!({ "msg": format!("{{% raw %}}{msg}{{% endraw %}}") }), ..t.clone() });
        &named
    } else {
        t
    };
    let flow = if t.module == "meta" { meta(env, host, conn, t, state).await } else { step::run_task(env, host, conn, t, state).await.into() };
    // any_errors_fatal: a failure no rescue catches ends the run for every host.
    if flow == Flow::Failed && state.rescuable == 0 && (t.any_errors_fatal == Some(true) || (env.play.any_errors_fatal && t.any_errors_fatal != Some(false))) {
        env.fatal.store(true, Ordering::SeqCst);
        env.end_play.store(true, Ordering::SeqCst);
    }
    Some(flow)
}

/// A task whose module is a template (`action: '{{ module }}'`): the module named for this
/// host, found as at load and its arguments checked; then it is an ordinary task.
fn templated_module(env: &PlayEnv, host: &str, t: &Task, state: &HostState) -> Result<Task, String> {
    let ctx = step::context(env, host, t, state, &[]);
    let name = env.sources.templates.render_str(&t.module, &ctx, &t.module_span).map_err(|e| e.to_string())?;
    let name = name.trim().to_string();
    let scope = crate::playbook::Scope { playbook_dir: &env.playbook_dir, role_dir: t.role_dir.as_deref(), collections: &[] };
    let module = env.catalog.resolve(&name, &scope).map_err(|why| format!("{}: {}", t.module_span, why.unwrap_or_else(|| format!("unknown module '{name}' (from `{}`)", t.module))))?;
    if crate::template::is_template(&module) {
        return Err(format!("{}: the module `{}` names is itself a template ({module})", t.module_span, t.module));
    }
    let resolved = Task { module, ..t.clone() };
    env.catalog.validate(&resolved).map_err(|e| e.to_string())?;
    Ok(resolved)
}

/// A block: its tasks; on a failure its `rescue:` (with `ansible_failed_task` and
/// `ansible_failed_result`); then its `always:` (not for a host that is gone or a run stopped).
async fn block_item(env: &PlayEnv, host: &str, conn: &Connection, b: &crate::playbook::Block, state: &mut HostState) -> Flow {
    let rescuable = !b.rescue.is_empty();
    state.rescuable += usize::from(rescuable);
    let at = state.place.len();
    state.place.push(0);
    let mut flow = run_items(env, host, conn, &b.block, state).await;
    state.place.truncate(at);
    state.rescuable -= usize::from(rescuable);
    if flow == Flow::Failed && !b.rescue.is_empty() {
        env.reporter.emit(Event::Rescued { host: host.to_string(), task: state.last_failed.as_ref().map(|f| f.0.clone()).unwrap_or_default() });
        if let Some((name, result)) = state.last_failed.take() {
            state.vars.insert("ansible_failed_task".into(), json!({ "name": name }));
            state.vars.insert("ansible_failed_result".into(), result);
        }
        state.place.push(1);
        flow = run_items(env, host, conn, &b.rescue, state).await;
        state.place.truncate(at);
    }
    // `always` runs after a failure too, but not for a host that is gone or a
    // run that was stopped.
    if !b.always.is_empty() && matches!(flow, Flow::Continue | Flow::Failed) {
        state.place.push(2);
        let a = run_items(env, host, conn, &b.always, state).await;
        state.place.truncate(at);
        if a != Flow::Continue {
            flow = a;
        }
    }
    flow
}


/// An include: its `when` and `loop` here, its file loaded for this host, its tasks run.
fn include<'a>(env: &'a PlayEnv, host: &'a str, conn: &'a Connection, inc: &'a Include, state: &'a mut HostState) -> Fut<'a> {
    Box::pin(async move {
        let shown = include_name(inc);
        let items = match include_items(env, host, inc, state, &shown) {
            Ok(i) => i,
            Err(f) => return f,
        };
        if items.is_empty() {
            report(env, host, shown, Status::Skipped, None, Some("skipped: the loop has no items".into()), None);
            return Flow::Continue;
        }
        let loop_var = match include_loop_var(env, host, inc, state, &shown) {
            Ok(v) => v,
            Err(f) => return f,
        };
        let at = state.place.len();
        for (iteration, item) in items.into_iter().enumerate() {
            state.place.truncate(at);
            state.place.push(iteration as u32);
            let mut layer = Vars::new();
            if let Some(i) = &item {
                layer.insert(loop_var.clone(), i.clone());
                if let Some(iv) = &inc.index_var {
                    layer.insert(iv.clone(), serde_json::json!(iteration));
                }
            }
            let ctx = include_context(env, host, inc, state, &layer);
            match include_when(env, host, inc, &ctx, &shown, &item) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(f) => return f,
            }
            let tasks = match load_include(env, host, inc, &ctx, &shown, &item, &layer, state) {
                Ok(Some(t)) => t,
                Ok(None) => continue,
                Err(f) => return f,
            };
            let flow = run_items(env, host, conn, &tasks, state).await;
            state.place.truncate(at);
            if flow != Flow::Continue {
                return flow;
            }
        }
        state.place.truncate(at);
        Flow::Continue
    })
}

/// The context an include is decided in: the host's variables and the include's own, `extra`
/// (its loop item) on top.
fn include_context(env: &PlayEnv, host: &str, inc: &Include, state: &HostState, extra: &Vars) -> minijinja::Value {
    let mut data = state.vars.clone();
    data.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
    // An include inside a role names its file with the role's magic variables, as a task does.
    let magic = super::step::role_magic(inc.role_dir.as_deref());
    // Lowest first, as ansible-core: vars files, role vars, include_vars, set_fact and
    // registered results, the include's own parameters.
    let layers = [Layer::Templates(&state.vars_files), Layer::Templates(&env.play.role_vars), Layer::Templates(&state.included), Layer::Data(&data), Layer::Templates(&inc.vars), Layer::Data(&magic)];
    env.sources.context(host, &env.play_hosts, &env.play.role_defaults, &env.play.vars, &layers)
}

/// The include's loop items (one `None` without a loop); `Err` when the loop cannot be rendered.
fn include_items(env: &PlayEnv, host: &str, inc: &Include, state: &HostState, shown: &str) -> Result<Vec<Option<Json>>, Flow> {
    let Some((raw, span)) = &inc.loop_items else { return Ok(vec![None]) };
    match super::step::loop_items(env, raw, span, &include_context(env, host, inc, state, &Vars::new())) {
        Ok(Json::Array(a)) => Ok(a.into_iter().map(Some).collect()),
        Ok(Json::Null) => Ok(Vec::new()),
        Ok(other) => {
            report(env, host, shown.to_string(), Status::Failed, Some(format!("{span}: `loop` must give a list, got {other}")), None, None);
            Err(Flow::Failed)
        }
        Err(e) => {
            report(env, host, shown.to_string(), Status::Failed, Some(e.to_string()), None, None);
            Err(Flow::Failed)
        }
    }
}

/// The name of the include's loop variable: `loop_control.loop_var` rendered (ansible-core
/// templates it, `loop_var: "{{ name }}"`).
fn include_loop_var(env: &PlayEnv, host: &str, inc: &Include, state: &HostState, shown: &str) -> Result<String, Flow> {
    if inc.loop_items.is_none() || !crate::template::is_template(&inc.loop_var) {
        return Ok(inc.loop_var.clone());
    }
    let ctx = include_context(env, host, inc, state, &Vars::new());
    env.sources.templates.render_str(&inc.loop_var, &ctx, &inc.span).map_err(|e| {
        report(env, host, shown.to_string(), Status::Failed, Some(e.to_string()), None, None);
        Flow::Failed
    })
}

/// The include's own `when` for one item: false skips it (reported), an error fails the host.
fn include_when(env: &PlayEnv, host: &str, inc: &Include, ctx: &minijinja::Value, shown: &str, item: &Option<Json>) -> Result<bool, Flow> {
    for c in &inc.when {
        match env.sources.templates.eval_bool(&c.expr, ctx, &c.span) {
            Ok(true) => {}
            Ok(false) => {
                report(env, host, shown.to_string(), Status::Skipped, None, Some(format!("skipped: `{}` is false", c.expr)), item.clone());
                return Ok(false);
            }
            Err(e) => {
                report(env, host, shown.to_string(), Status::Failed, Some(e.to_string()), None, item.clone());
                return Err(Flow::Failed);
            }
        }
    }
    Ok(true)
}

/// The included file (or role) loaded for this host and item, its tasks given the include's
/// vars and item, its handlers and (`public: true`) a role's defaults and vars made the host's.
/// `Ok(None)`: it could not load and `ignore_errors` lets the host go on.
#[allow(clippy::too_many_arguments)]
fn load_include(env: &PlayEnv, host: &str, inc: &Include, ctx: &minijinja::Value, shown: &str, item: &Option<Json>, layer: &Vars, state: &mut HostState) -> Result<Option<Vec<Item>>, Flow> {
    let (label, mut tasks, handlers, exports) = match resolve(env, inc, ctx) {
        Ok(l) => l,
        Err(msg) if inc.ignore_errors => {
            env.reporter.emit(Event::Task {
                host: host.to_string(),
                task: shown.to_string(),
                status: Status::Failed,
                msg: Some(msg),
                changes: Vec::new(),
                diff: None,
                note: None,
                item: item.clone(),
                output: None,
                ignored: true,
                failed_changed: false,
                check: env.check,
                duration_ms: 0,
            });
            return Ok(None);
        }
        Err(msg) => {
            report(env, host, shown.to_string(), Status::Failed, Some(msg), None, item.clone());
            state.last_failed = Some((shown.to_string(), json!({"failed": true})));
            return Err(Flow::Failed);
        }
    };
    // `public: true`: the role's defaults and vars are the host's from now on.
    if let (true, Some((d, v))) = (inc.public, exports) {
        state.public_defaults.extend(d);
        state.public_vars.extend(v);
    }
    // The include's vars and loop item reach its tasks (above their own, as Ansible's include
    // parameters); an include inside keeps its own vars over these (the nearer include wins).
    let mut params = inc.vars.clone();
    params.extend(layer.iter().map(|(k, v)| (k.clone(), v.clone())));
    crate::playbook::walk_mut(
        &mut tasks,
        &mut |t: &mut Task| {
            for (k, v) in &params {
                // The parents an import_role inside named are nearer than this include's.
                if k.starts_with("ansible_parent_role_") && t.vars.contains_key(k) {
                    continue;
                }
                t.vars.insert(k.clone(), v.clone());
            }
        },
        &mut |i: &mut Include| {
            for (k, v) in &params {
                i.vars.entry(k.clone()).or_insert_with(|| v.clone());
            }
        },
    );
    // An included role's handlers are the host's from now on (once each), with the include's
    // parameters as their own.
    for mut h in handlers {
        if !env.play.handlers.iter().chain(state.handlers.iter()).any(|x| x.span == h.span) {
            for (k, v) in &params {
                h.vars.insert(k.clone(), v.clone());
            }
            state.handlers.push(h);
        }
    }
    // Each included file counts once in the recap (ok), as in Ansible.
    let label = match item {
        Some(i) => format!("{label} => (item={})", crate::template::pyrepr::py_str(&crate::template::to_value(i))),
        None => label,
    };
    report(env, host, shown.to_string(), Status::Ok, None, Some(format!("included: {label}")), None);
    Ok(Some(tasks))
}

/// The include's tasks for this host: its file name rendered, the file found, loaded and
/// checked (an error names the file, line and column).
/// An include resolved: its label, tasks, handlers and (a role's) defaults and vars.
type Resolved = (String, Vec<Item>, Vec<Task>, Option<(Vars, Vars)>);

fn resolve(env: &PlayEnv, inc: &Include, ctx: &minijinja::Value) -> Result<Resolved, String> {
    let t = &env.sources.templates;
    let mut lctx = crate::playbook::load_ctx(inc.role_dir.clone(), env.playbook_dir.clone(), env.project_root.clone(), env.catalog);
    lctx.parents = inc.parents.clone();
    let render = |s: &str| t.render_str(s, ctx, &inc.span).map_err(|e| e.to_string());
    match &inc.kind {
        IncludeKind::Tasks { file } => {
            if let Some(p) = &inc.preloaded {
                return Ok((file.clone(), p.clone(), Vec::new(), None));
            }
            let rel = render(file)?;
            let path = crate::playbook::find_tasks_file(&rel, &inc.dir, &lctx).ok_or_else(|| format!("{}: include_tasks: no such file {}", inc.span, inc.dir.join(&rel).display()))?;
            let mut items = crate::playbook::load_tasks_file(&path, &lctx).map_err(|e| e.to_string())?;
            let apply = inc.inherit.clone();
            crate::playbook::walk_mut(&mut items, &mut |t| apply.apply(t), &mut |i| i.inherit = i.inherit.under(&apply));
            // Handlers of roles its tasks import join the play's.
            let handlers = lctx.imported_handlers.borrow_mut().drain(..).collect();
            Ok((path.display().to_string(), items, handlers, None))
        }
        IncludeKind::Role { name, tasks_from, vars_from, defaults_from } => {
            if let Some(p) = &inc.preloaded {
                return Ok((name.clone(), p.clone(), inc.handlers.clone(), inc.exports.clone()));
            }
            let opt = |s: &Option<String>| s.as_deref().map(render).transpose();
            let name = render(name)?;
            let (defaults, mut items, mut handlers, vars) = crate::playbook::load_role_dynamic(&name, opt(tasks_from)?.as_deref(), opt(vars_from)?.as_deref(), opt(defaults_from)?.as_deref(), &inc.span, &lctx).map_err(|e| e.to_string())?;
            let exports = Some((defaults.clone(), vars));
            let defaults = std::sync::Arc::new(defaults);
            for h in &mut handlers {
                if h.defaults.is_none() {
                    h.defaults = Some(defaults.clone());
                }
            }
            let apply = inc.inherit.clone();
            crate::playbook::walk_mut(
                &mut items,
                &mut |t| {
                    apply.apply(t);
                    if t.defaults.is_none() {
                        t.defaults = Some(defaults.clone());
                    }
                },
                &mut |i| i.inherit = i.inherit.under(&apply),
            );
            Ok((name, items, handlers, exports))
        }
    }
}

/// `meta:` actions. Those that make no sense for recover's per-host walk are accepted where
/// Ansible's meaning holds (a no-op) and refused at load otherwise.
async fn meta(env: &PlayEnv, host: &str, conn: &Connection, task: &Task, state: &mut HostState) -> Flow {
    let action = task.args.get("_raw_params").and_then(Json::as_str).unwrap_or_default().trim().to_string();
    // A meta task's `when` (end_host, end_play, ...).
    if !task.when.is_empty() {
        let ctx = step::context(env, host, task, state, &[]);
        for c in &task.when {
            match env.sources.templates.eval_bool(&c.expr, &ctx, &c.span) {
                Ok(true) => {}
                Ok(false) => {
                    report(env, host, task.display_name(), Status::Skipped, None, Some(format!("skipped: `{}` is false", c.expr)), None);
                    return Flow::Continue;
                }
                Err(e) => {
                    report(env, host, task.display_name(), Status::Failed, Some(e.to_string()), None, None);
                    return Flow::Failed;
                }
            }
        }
    }
    match action.as_str() {
        "flush_handlers" => run_handlers(env, host, conn, state).await,
        "end_host" => Flow::EndHost,
        "end_play" | "end_batch" => {
            env.end_play.store(true, Ordering::SeqCst);
            Flow::EndPlay
        }
        "clear_facts" => {
            state.gathered = false;
            state.module_facts.clear();
            env.sources.clear_facts(host);
            Flow::Continue
        }
        "clear_host_errors" | "noop" | "refresh_inventory" | "reset_connection" => Flow::Continue,
        _ => {
            report(env, host, task.display_name(), Status::Failed, Some(format!("meta: unknown action '{action}'")), None, None);
            Flow::Failed
        }
    }
}

/// Runs the handlers notified so far, in the order they are written, and forgets them.
pub fn run_handlers<'a>(env: &'a PlayEnv, host: &'a str, conn: &'a Connection, state: &'a mut HostState) -> Fut<'a> {
    Box::pin(async move {
        let notified = std::mem::take(&mut state.notified);
        if notified.is_empty() {
            return Flow::Continue;
        }
        let mut all: Vec<Task> = env.play.handlers.clone();
        all.extend(state.handlers.iter().cloned());
        let base = state.place.len();
        let (mut shown_includes, mut skipped_includes): (Vec<String>, Vec<String>) = Default::default();
        for (index, handler) in all.iter().enumerate() {
            let hit = notified.iter().any(|n| handler.answers(n));
            if !hit {
                continue;
            }
            // After the step that flushed them, before the next.
            state.place.extend([u32::MAX, index as u32]);
            // A handler that is an include_tasks shows the include first (or that it is
            // skipped, with all its tasks), as ansible-core.
            if let Some(h) = &handler.handler_of {
                let key = h.span.to_string();
                if skipped_includes.contains(&key) {
                    state.place.truncate(base);
                    continue;
                }
                if !shown_includes.contains(&key) {
                    shown_includes.push(key.clone());
                    let ctx = step::context(env, host, handler, state, &[]);
                    let mut run = true;
                    for c in &h.when {
                        match env.sources.templates.eval_bool(&c.expr, &ctx, &c.span) {
                            Ok(b) => run &= b,
                            Err(e) => {
                                report(env, host, h.names[0].clone(), Status::Failed, Some(e.to_string()), None, None);
                                return Flow::Failed;
                            }
                        }
                    }
                    let name = h.names.first().cloned().unwrap_or_default();
                    if !run {
                        report(env, host, name, Status::Skipped, None, Some("skipped: its `when` is false".into()), None);
                        skipped_includes.push(key);
                        state.place.truncate(base);
                        continue;
                    }
                    report(env, host, name, Status::Ok, None, Some(format!("included: {}", h.file)), None);
                }
            }
            let flow: Flow = step::run_task(env, host, conn, handler, state).await.into();
            state.place.truncate(base);
            if flow != Flow::Continue {
                return flow;
            }
        }
        Flow::Continue
    })
}
