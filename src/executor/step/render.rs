//! Stage 3: the step made concrete: where it runs (`delegate_to`: that host's connection,
//! lock and backups, with this host's variables), as whom (`become`), with which arguments
//! (`module_defaults`, then the task's own, rendered: data, shell-quoted, or a command's
//! words) and environment. The result is a [`Rendered`] step and the [`StepCtx`] a module
//! plans and applies it with.

use std::sync::Arc;

use minijinja::Value;
use serde_json::Value as Json;

use super::record::input_failure;
use super::StepResult;
use crate::error::SourceError;
use crate::executor::state::HostState;
use crate::executor::PlayEnv;
use crate::modules::{self, StepCtx};
use crate::playbook::Task;
use crate::report::Status;
use crate::transport::Connection;

/// Where a step runs: its host's own connection, or the one it is delegated to.
pub(super) struct Target<'a> {
    conn: Conn<'a>,
    pub on: String,
}

enum Conn<'a> {
    Own(&'a Connection),
    Delegated(Arc<Connection>),
}

impl Target<'_> {
    pub fn conn(&self) -> &Connection {
        match &self.conn {
            Conn::Own(c) => c,
            Conn::Delegated(c) => c,
        }
    }
}

/// `delegate_to` rendered (an omitted or empty one runs on the host itself), its connection
/// opened (and its lock taken); a task-level `remote_user` must be the connection's.
pub(super) async fn target<'a>(env: &PlayEnv, host: &str, conn: &'a Connection, task: &Task, ctx: &Value, state: &mut HostState) -> Result<Target<'a>, StepResult> {
    state.delegated_to = None;
    let mut t = Target { conn: Conn::Own(conn), on: host.to_string() };
    if let Some(d) = &task.delegate_to {
        let d = env.sources.templates.render_str(d, ctx, &task.span).map_err(input_failure)?;
        let omitted = d == crate::template::OMIT || d.trim().is_empty();
        if !omitted {
            state.delegated_to = Some(d.clone());
        }
        // `delegate_to: "{{ 'localhost' if x else omit }}"`: omitted, the task runs on its host.
        if d != host && !omitted {
            match crate::executor::connect(env, &d, &env.conns).await {
                Ok(c) => t = Target { conn: Conn::Delegated(c), on: d },
                Err(crate::executor::ConnectError::Unreachable(m)) | Err(crate::executor::ConnectError::Locked(m)) => {
                    state.delegate_unreachable = true;
                    return Err(StepResult { msg: Some(format!("delegate_to {d}: {m}")), executed: false, ..StepResult::new(Status::Unreachable) });
                }
            }
        }
    }
    if let Some(u) = &task.remote_user {
        let on = &t.on;
        let opened = env.opened.lock().ok().and_then(|m| m.get(on).cloned()).and_then(|o| o.0);
        let login = ctx.get_attr("ansible_user").ok().filter(|v| !v.is_undefined()).map(|v| crate::template::pyrepr::py_str(&v));
        if opened.as_deref() != Some(u.as_str()) && login.as_deref() != Some(u.as_str()) {
            return Err(StepResult::failed(format!("host {on}: task-level remote_user '{u}' differs from the user the host is connected as; recover keeps one connection per host (set it on the play or as ansible_user): not supported"), Default::default()));
        }
    }
    Ok(t)
}

/// A step with its arguments, user and environment rendered for its host.
pub(super) struct Rendered {
    pub args: Json,
    pub become_user: Option<String>,
    pub environment: Vec<(String, String)>,
}

impl Rendered {
    /// What the module plans and applies the step with.
    pub fn step_ctx<'a>(self, env: &'a PlayEnv, target: &'a Target<'_>, task: &'a Task, ctx: &'a Value) -> (StepCtx<'a>, Json) {
        let sctx = StepCtx {
            environment: self.environment,
            host: &target.on,
            conn: target.conn(),
            templates: &env.sources.templates,
            run: env,
            backup_root: super::require::configured_backup_root(ctx),
            vars: ctx,
            become_user: self.become_user,
            check: super::context::check_of(env, task),
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
        (sctx, self.args)
    }
}

/// Renders the step for its target (see the module doc).
pub(super) fn render(env: &PlayEnv, target: &Target<'_>, task: &Task, module: &dyn modules::Module, ctx: &Value) -> Result<Rendered, StepResult> {
    let args = render_args(env, task, module, ctx).map_err(input_failure)?;
    let become_user = become_user(env, target, task, ctx)?;
    let environment = environment(env, task, ctx).map_err(input_failure)?;
    Ok(Rendered { args, become_user, environment })
}

/// The user the step becomes (none: the login user). A task's (or block's) become_method,
/// _flags and _exe must be its connection's: recover keeps one way of becoming per host (the
/// host's variables win over keywords, as in Ansible).
fn become_user(env: &PlayEnv, target: &Target<'_>, task: &Task, ctx: &Value) -> Result<Option<String>, StepResult> {
    let (host_become, host_become_user) = crate::executor::vars::become_default(ctx);
    let escalate = task.r#become.as_ref().and_then(crate::playbook::Flag::fixed).or(env.play.r#become).unwrap_or(host_become);
    let user = match task.become_user.clone().or(env.play.become_user.clone()) {
        Some(u) => Some(env.sources.templates.render_str(&u, ctx, &task.span).map_err(input_failure)?),
        None => host_become_user,
    };
    if !escalate {
        return Ok(None);
    }
    let have = target.conn().become_settings();
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
        let w = env.sources.templates.render_str(w, ctx, &task.span).map_err(input_failure)?;
        if w.trim() != has.trim() {
            let on = &target.on;
            return Err(StepResult::failed(format!("host {on}: this task's {k} '{w}' differs from the one the host's connection uses ('{has}'); recover keeps one per host: set it on the play, or as ansible_{k}"), Default::default()));
        }
    }
    Ok(Some(user.unwrap_or_else(|| "root".into())))
}

/// `environment:` of the play, blocks, role and task, outermost first, rendered.
fn environment(env: &PlayEnv, task: &Task, ctx: &Value) -> Result<Vec<(String, String)>, SourceError> {
    let mut environment: Vec<(String, String)> = Vec::new();
    for (raw, span) in &task.environment {
        match env.sources.templates.render_value(raw, ctx, span)? {
            Json::Object(m) => {
                for (k, v) in m {
                    if !crate::playbook::is_identifier(&k) {
                        return Err(SourceError::new(span.clone(), format!("environment: '{k}' is not a valid variable name")));
                    }
                    let v = match v {
                        Json::String(s) => s,
                        other => crate::template::pyrepr::py_str(&crate::template::to_value(&other)),
                    };
                    environment.retain(|(n, _)| *n != k);
                    environment.push((k, v));
                }
            }
            Json::Null => {}
            other => return Err(SourceError::new(span.clone(), format!("`environment` must be a mapping of names to values, got {other}"))),
        }
    }
    Ok(environment)
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
    // Arguments splatted from a template (`assert: '{{ item }}'`): the mapping it renders to,
    // under the task's own `args:`.
    if !module.free_form() {
        if let Some(Json::String(s)) = raw.get("_raw_params").cloned() {
            let span = task.module_span.clone();
            match t.render_value(&Json::String(s.clone()), ctx, &span)? {
                Json::Object(m) => {
                    raw.remove("_raw_params");
                    for (k, v) in m {
                        raw.entry(k).or_insert(v);
                    }
                }
                other => return Err(SourceError::new(span, format!("module '{}' needs arguments as a mapping; `{s}` gave {other}", module.name()))),
            }
        }
    }
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
            // A module whose keys are names (set_fact) may template them: `"{{ item.key }}": v`.
            let names = module.free_keys() && matches!(module.name(), "set_fact" | "set_stats" | "add_host");
            let key = if names && crate::template::is_template(k) { t.render_str(k, ctx, &span)? } else { k.clone() };
            if names && key != *k && !crate::playbook::is_identifier(&key) {
                return Err(SourceError::new(span, format!("{}: '{key}' (from '{k}') is not a valid variable name", module.name())));
            }
            out.insert(key, rendered);
        }
    }
    Ok(Json::Object(out))
}
