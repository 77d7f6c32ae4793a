//! Saved plans in the step: a `--save-plan` dry-run records each host's steps; a `recover
//! apply` run holds every step that would change a host to the plan's, and a host whose
//! diagnosis reads differently from the plan's stops before its next change.

use serde_json::{json, Value as Json};

use crate::executor::state::HostState;
use crate::executor::PlayEnv;
use crate::modules::{Plan, StepCtx};
use crate::plan::{digest_of, normalized, sha256_hex, Mode, StepEntry};
use crate::playbook::Task;
use crate::safety::{Destructive, Tier};

/// Modules whose `name` is a service the step starts, stops or restarts.
const SERVICE_MODULES: &[&str] = &["service", "systemd", "systemd_service", "sysvinit"];

/// What a step is, for the plan: its identity, what it runs and what it touches.
pub(super) struct Seen<'a> {
    pub task: &'a Task,
    pub name: String,
    pub args: &'a Json,
    pub plan: &'a Plan,
    pub become_user: Option<String>,
    /// The host's `services` map (to read a touched service's state).
    pub services: Option<Json>,
}

/// The step's key on its host: `PLAY / TASK #N`, N counting the steps of that name there.
pub(super) fn key(env: &PlayEnv, state: &mut HostState, name: &str) -> String {
    // A name rendered from a secret (an unnamed task is named by its arguments) is masked.
    let base = crate::secrets::mask_str(&format!("{} / {name}", env.play.name));
    let n = state.plan_seen.entry(base.clone()).or_insert(0);
    *n += 1;
    format!("{base} #{n}")
}

/// A read-only step's output, as the plan compares it: a command's rc and stdout, a stat's
/// identity of the file (not its access time).
fn output_digest(module: &str, result: &serde_json::Map<String, Json>) -> Option<String> {
    let v = match module {
        "command" | "shell" | "raw" | "script" => json!([result.get("rc"), result.get("stdout")]),
        "stat" => {
            let s = result.get("stat")?;
            json!(["exists", "isdir", "isreg", "islnk", "size", "mode", "mtime", "uid", "gid", "checksum"].iter().map(|k| s.get(*k).cloned().unwrap_or(Json::Null)).collect::<Vec<_>>())
        }
        _ => return None,
    };
    Some(sha256_hex(v.to_string().as_bytes()))
}

/// `need`: what the real run requires for the step, in words (see `require::requirement`).
pub(super) fn entry(_env: &PlayEnv, key: String, s: &Seen<'_>, kind: &str, d: Option<(&Destructive, Tier)>, need: Option<String>, before_change: bool) -> StepEntry {
    let hides = s.task.hides();
    // Secrets never reach a plan file: arguments, commands and diffs are stored (and compared,
    // by digest) with every secret masked; `apply` derives the values again when it runs.
    let commands: Vec<String> = s.plan.commands.iter().map(|c| crate::secrets::mask_str(&c.display())).collect();
    let diff = s.plan.diff.as_ref().map(|d| crate::secrets::mask_str(&d.capped()));
    let mut args = s.args.clone();
    crate::secrets::mask_json(&mut args);
    let args_text = args.to_string();
    let mut paths = Vec::new();
    let mut services = Vec::new();
    if kind == "change" {
        if let Some((d, _)) = d {
            paths.extend(d.paths.iter().chain(d.tier_paths.iter()).cloned());
            services.extend(d.services.iter().cloned());
        }
        for k in ["path", "dest"] {
            if let Some(p) = s.args.get(k).and_then(Json::as_str).filter(|p| p.starts_with('/')) {
                paths.push(p.to_string());
            }
        }
        if SERVICE_MODULES.contains(&s.task.module.as_str()) {
            if let Some(n) = s.args.get("name").and_then(Json::as_str) {
                services.push(n.to_string());
            }
        }
        paths.sort();
        paths.dedup();
        services.sort();
        services.dedup();
    }
    let tier = d.map(|(_, t)| t);
    let probes = services
        .iter()
        .filter_map(|n| {
            let m = crate::modules::system::service::Manager::lookup(s.services.as_ref(), n).ok()?;
            let c = m.status_cmd();
            Some(crate::plan::ServiceProbe { name: n.clone(), command: c.line(), become_user: c.become_user.clone(), container: m.is_container() })
        })
        .collect();
    StepEntry {
        key,
        task: crate::secrets::mask_str(&s.name),
        module: s.task.module.clone(),
        kind: kind.to_string(),
        args: (!hides).then_some(args),
        args_sha256: sha256_hex(normalized(&args_text).as_bytes()),
        commands: if hides { vec!["(hidden by no_log)".into()] } else { commands.clone() },
        commands_sha256: digest_of(&commands),
        diff: if hides { diff.as_ref().map(|_| "(diff hidden by no_log)".to_string()) } else { diff.clone() },
        diff_sha256: diff.as_ref().map(|d| sha256_hex(normalized(d).as_bytes())),
        tier: tier.map(|t| t.to_string()),
        reason: d.map(|(d, _)| crate::secrets::mask_str(&d.reason)),
        backups: d.filter(|(d, _)| d.preserves.is_none()).map(|(d, _)| d.paths.clone()).unwrap_or_default(),
        requirement: need,
        output_sha256: if kind == "read" { output_digest(&s.task.module, &s.plan.result) } else { None },
        before_change,
        paths,
        services,
        probes,
        become_user: s.become_user.clone(),
    }
}

/// `--save-plan`: keeps the step for the host it ran on.
pub(super) fn record(env: &PlayEnv, e: StepEntry, host: &str) {
    if let Some(Mode::Record(m)) = env.safety.plan.as_deref() {
        if let Ok(mut m) = m.lock() {
            m.entry(host.to_string()).or_default().push(e);
        }
    }
}

/// `recover apply`, a read-only step: before the host's first change, its output must be the
/// one the plan was decided on; otherwise the host is stale from here on.
pub(super) fn check_read(env: &PlayEnv, host: &str, state: &mut HostState, e: &StepEntry) {
    let Some(Mode::Apply(pf)) = env.safety.plan.as_deref() else { return };
    if state.plan_applied > 0 || state.plan_stale.is_some() {
        return;
    }
    let Some(was) = pf.plan.hosts.get(host).and_then(|h| h.steps.iter().find(|s| s.key == e.key)) else { return };
    if let (true, Some(a), Some(b)) = (was.before_change, &was.output_sha256, &e.output_sha256) {
        if a != b {
            state.plan_stale = Some(format!(
                "stale plan: '{}' reads differently on {host} than when the plan was made at {} (output sha256 {} -> {}); the decision it made may not hold",
                e.task,
                pf.plan.created,
                crate::plan::short(a),
                crate::plan::short(b)
            ));
        }
    }
}

/// `recover apply`, a step about to change the host: `Err` says why it may not.
pub(super) fn check_change(env: &PlayEnv, host: &str, state: &HostState, e: &StepEntry) -> Result<(), String> {
    let Some(Mode::Apply(pf)) = env.safety.plan.as_deref() else { return Ok(()) };
    if let Some(msg) = &state.plan_stale {
        return Err(format!("{msg}; '{}' and the rest of the plan did not run on {host}", e.task));
    }
    let made = &pf.plan.created;
    let Some(was) = pf.plan.hosts.get(host).and_then(|h| h.steps.iter().find(|s| s.key == e.key)) else {
        return Err(format!("stale plan: '{}' would change {host} ({}), and the plan made at {made} has no such step there; it did not run", e.task, e.commands.join("; ")));
    };
    let why = if was.kind != "change" {
        Some("the plan has it changing nothing".to_string())
    } else if was.args_sha256 != e.args_sha256 {
        Some("its arguments differ from the plan's".to_string())
    } else if was.commands_sha256 != e.commands_sha256 {
        Some(format!("it would run `{}`, the plan has `{}`", e.commands.join("; "), was.commands.join("; ")))
    } else if was.diff_sha256 != e.diff_sha256 {
        Some("its diff differs from the plan's".to_string())
    } else if was.tier != e.tier {
        Some(format!("its tier is {} now, {} in the plan", e.tier.as_deref().unwrap_or("none"), was.tier.as_deref().unwrap_or("none")))
    } else {
        None
    };
    match why {
        Some(w) => Err(format!("stale plan: '{}' on {host}: {w} (made at {made}); it did not run, nor the rest of the plan there", e.task)),
        None => Ok(()),
    }
}

/// Under `--save-plan` or `recover apply`: the step's key on the host it runs on, and what it
/// is (none otherwise).
pub(super) fn seen<'a>(env: &PlayEnv, state: &mut HostState, sctx: &StepCtx<'a>, task: &'a Task, args: &'a Json, plan: &'a Plan) -> Option<(String, Seen<'a>)> {
    env.safety.plan.as_ref()?;
    let name = env.sources.templates.render_str(&task.display_name(), sctx.vars, &task.span).unwrap_or_else(|_| task.display_name());
    let key = key(env, state, &name);
    Some((key, Seen { task, name, args, plan, become_user: sctx.become_user.clone(), services: crate::modules::system::service::services_of(sctx) }))
}

/// A step done while planning (read-only): recorded, and under `apply` its output held to the
/// plan's (a diagnosis that reads differently makes the host stale).
pub(super) fn read_only(env: &PlayEnv, sctx: &StepCtx<'_>, state: &mut HostState, seen: Option<(String, Seen<'_>)>) {
    if let Some((key, seen)) = seen {
        let e = entry(env, key, &seen, "read", None, None, state.planned_changes == 0);
        check_read(env, sctx.host, state, &e);
        record(env, e, sctx.host);
    }
}
