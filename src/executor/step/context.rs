//! The variables a step sees: the play's layers, the host's facts, `include_vars`, set_fact and
//! registered results, the task's vars; the loop's items; flags that are templates; the
//! overlay conditions are judged in.

use minijinja::Value;
use serde_json::{json, Value as Json};

use crate::error::SourceError;
use crate::executor::state::HostState;
use crate::executor::vars::Layer;
use crate::executor::PlayEnv;
use crate::playbook::Task;
use crate::template::Vars;

/// The magic variables of a task or include inside a role: `role_name`, `ansible_role_name`,
/// `role_path` (none outside a role).
pub fn role_magic(role_dir: Option<&std::path::Path>) -> Vars {
    let mut magic = Vars::new();
    if let Some(dir) = role_dir {
        if let Some(name) = dir.file_name() {
            magic.insert("role_name".into(), json!(name.to_string_lossy()));
            magic.insert("ansible_role_name".into(), json!(name.to_string_lossy()));
        }
        // Absolute, as ansible-core's (a task's `stat: path={{ role_path }}/x` runs elsewhere).
        magic.insert("role_path".into(), json!(absolute(dir).display().to_string()));
    }
    magic
}

/// A folder as an absolute path (as written when that fails).
pub fn absolute(dir: &std::path::Path) -> std::path::PathBuf {
    std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf())
}

/// The context of a step of `task` on `host`: the play's layers, the host's facts,
/// `include_vars`, set_fact and registered results, the task's vars, then `extra`.
pub fn context(env: &PlayEnv, host: &str, task: &Task, state: &HostState, extra: &[Layer<'_>]) -> Value {
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
    let mut magic = role_magic(task.role_dir.as_deref());
    let search: Vec<String> = task.role_dir.iter().chain(std::iter::once(&env.playbook_dir)).map(|d| absolute(d).display().to_string()).collect();
    magic.insert("ansible_search_path".into(), json!(search));
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
pub fn load_vars_files(env: &PlayEnv, host: &str, state: &mut HostState) -> Result<(), SourceError> {
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
pub(super) fn resolve_flags(env: &PlayEnv, host: &str, task: &Task, state: &HostState) -> Result<Task, SourceError> {
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
pub fn check_of(env: &PlayEnv, task: &Task) -> bool {
    match &task.check_mode {
        Some(crate::playbook::Flag::Fixed(b)) => *b,
        _ => env.check,
    }
}

/// The loop's items: `loop:`/`with_items:` rendered, or a `with_<lookup>`'s results.
pub fn loop_items(env: &PlayEnv, raw: &Json, span: &crate::error::Span, ctx: &Value) -> Result<Json, SourceError> {
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

/// Variables of `top` first, then `base` (for condition contexts).
#[derive(Debug)]
pub(super) struct Overlay {
    pub top: Value,
    pub base: Value,
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

pub(super) fn all_true(env: &PlayEnv, conds: &[crate::playbook::Cond], ctx: &Value) -> Result<bool, SourceError> {
    for c in conds {
        if !env.sources.templates.eval_bool(&c.expr, ctx, &c.span)? {
            return Ok(false);
        }
    }
    Ok(true)
}
