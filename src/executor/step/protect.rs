//! Stage 6: the safety gate in front of every destructive step (DESIGN invariants 2-4): the
//! paths resolved on the host and checked, the tier, the verified pre-backup, the preview, the
//! confirmation or approval. It runs in the executor, so no playbook can skip it.

use serde_json::json;

use super::record::{not_started, refused};
use super::require::{tier_of, var, Requirement, DEFAULT_BACKUP_ROOT};
use super::{interrupted, StepResult};
use crate::executor::state::HostState;
use crate::executor::PlayEnv;
use crate::modules::{Plan, StepCtx};
use crate::playbook::Task;
use crate::report::Event;
use crate::safety::backup::{self, BackupRecord, BackupSpec};
use crate::safety::{Decision, Destructive, Tier};
use crate::transport::Cmd;


/// What the host says of a destructive step's paths and of its backup root, read in one
/// round trip as the step's user.
struct Seen {
    /// Each path as `realpath` resolves it; `None` when nothing is there to back up.
    paths: Vec<Option<String>>,
    /// The backup root (as configured or found for the user), and as the host resolves it.
    root: String,
}

/// Resolves the step's paths and its backup root on the host (`realpath`, in one round trip)
/// and checks what the literal names could not show: a path that resolves to a system root,
/// a backup root that resolves into (or around) a path the step touches, a path that
/// resolves onto a backup this run took. The backup root is `recover_backup_root`; else the
/// SOP's folder when the step runs as root; else `~/.local/state/recover/backups` of the user
/// it runs as (who cannot write /var/backups); found once per host and user.
async fn resolve(sctx: &StepCtx<'_>, d: &Destructive, state: &mut HostState) -> Result<Seen, Stop> {
    let host = sctx.host;
    let name = sctx.task.display_name();
    if let Some(p) = d.paths.iter().find(|p| p.contains('\n')) {
        return Err(Stop::Refused(format!("host {host}: '{name}' names a path with a newline ({p:?}); refused")));
    }
    let configured = var(sctx, "recover_backup_root");
    let key = sctx.become_user.clone().unwrap_or_default();
    let known = configured.clone().or_else(|| (key == "root").then(|| DEFAULT_BACKUP_ROOT.to_string())).or_else(|| state.backup_roots.get(&key).cloned());
    let mut script = String::from("for p in \"$@\"; do if [ -e \"$p\" ]; then r=$(realpath -e -- \"$p\" 2>/dev/null) && printf 'R %s\\n' \"$r\" || printf 'U\\n'; else printf 'A\\n'; fi; done; ");
    match &known {
        Some(r) => script.push_str(&format!("printf 'B %s\\n' \"$(realpath -m -- {})\"", crate::transport::quote::quote(r))),
        None => script.push_str(&format!(
            "if [ \"${{__uid:-$(id -u)}}\" = 0 ]; then b={}; else b=\"${{HOME%/}}/.local/state/recover/backups\"; fi; case \"$b\" in /*) ;; *) b={}; esac; printf 'H %s\\n' \"$b\"; printf 'B %s\\n' \"$(realpath -m -- \"$b\")\"",
            DEFAULT_BACKUP_ROOT, DEFAULT_BACKUP_ROOT
        )),
    }
    let mut words = vec!["sh".to_string(), "-c".to_string(), script, "resolve".to_string()];
    words.extend(d.paths.iter().cloned());
    let out = sctx.run(Cmd::argv(words).label("resolve the step's paths and backup root on the host")).await.map_err(|e| match e {
        crate::modules::StepError::Unreachable(m) => Stop::Lost(format!("host {host}: {m}")),
        other => Stop::Refused(format!("host {host}: {other:?}")),
    })?;
    let text = out.stdout_str();
    let lines: Vec<&str> = text.lines().collect();
    if !out.ok() || lines.len() < d.paths.len() + 1 {
        return Err(Stop::Refused(format!("host {host}: cannot resolve the paths of '{name}' on the host ({}); refused", out.stderr_str().trim())));
    }
    let mut paths = Vec::new();
    for (p, l) in d.paths.iter().zip(&lines) {
        match *l {
            "A" => paths.push(None),
            l if l.starts_with("R /") => paths.push(Some(l[2..].to_string())),
            _ => return Err(Stop::Refused(format!("host {host}: '{name}': {p} cannot be resolved on the host (realpath failed); refused"))),
        }
    }
    let root = match &known {
        Some(r) => r.clone(),
        None => {
            let found = lines.iter().find_map(|l| l.strip_prefix("H ")).unwrap_or(DEFAULT_BACKUP_ROOT).to_string();
            state.backup_roots.insert(key, found.clone());
            found
        }
    };
    let real_root = lines.iter().find_map(|l| l.strip_prefix("B ")).filter(|r| r.starts_with('/')).unwrap_or(&root).to_string();
    for (p, real) in d.paths.iter().zip(&paths) {
        let Some(real) = real else { continue };
        if let Some(r) = crate::safety::paths::system_root(real) {
            return Err(Stop::Refused(format!("host {host}: '{name}' would remove, move or replace the system folder {r} ({p} resolves to it on the host); recover never does that")));
        }
        for (label, root) in [("", &root), (" (as the host resolves it)", &real_root)] {
            if crate::safety::paths::overlap(real, root) {
                return Err(Stop::Refused(format!(
                    "host {host}: '{name}' touches {p} ({real} on the host), and the backup root {root}{label} lies {} it: the backup would not survive the step; set recover_backup_root outside {real}",
                    if crate::safety::paths::within(root, real) { "inside" } else { "around" }
                )));
            }
        }
        if let Some(b) = state.backups.iter().find(|b| crate::safety::paths::within(&b.archive, real)) {
            return Err(Stop::Refused(format!("host {host}: '{name}' touches {p} ({real} on the host), which holds the backup {} taken earlier in this run; refused", b.archive)));
        }
    }
    Ok(Seen { paths, root })
}

/// Invariant 2, as the host resolves the step's paths (a symlink is backed up as what it
/// points to): the backups of this run that cover them, and a verified backup of those no
/// backup covers yet, taken now.
async fn backups(env: &PlayEnv, sctx: &StepCtx<'_>, d: &Destructive, task: &str, state: &mut HostState) -> Result<Vec<BackupRecord>, Stop> {
    let (host, safety) = (sctx.host, &env.safety);
    let mut covering: Vec<BackupRecord> = Vec::new();
    let seen = resolve(sctx, d, state).await?;
    let mut need = Vec::new();
    for (given, real) in d.paths.iter().zip(&seen.paths) {
        let Some(real) = real else { continue };
        if let Some(b) = state.backups.iter().find(|b| b.covers(real)) {
            if !covering.iter().any(|c| c.id == b.id) {
                covering.push(b.clone());
            }
            continue;
        }
        if real != given {
            env.reporter.busy(host, &format!("{task}: {given} is {real} on the host"));
        }
        if !need.contains(real) {
            need.push(real.clone());
        }
    }
    if !need.is_empty() {
        let dest = seen.root.clone();
        let first = need[0].trim_end_matches('/').rsplit('/').next().unwrap_or("data").to_string();
        let spec = BackupSpec {
            paths: need,
            dest_dir: dest,
            name: backup::archive_name(&format!("{host}-{first}-before-{}", backup::slug(task)), &safety.run_id),
            task: task.to_string(),
            run_id: safety.run_id.clone(),
        };
        env.reporter.busy(host, &format!("{task}: backing up {}", spec.paths.join(", ")));
        let record = backup::take(&sctx.remote(), &spec).await.map_err(|e| {
            let msg = format!("host {host}: backup before '{task}' failed: {e}; the step did not run");
            if e.lost { Stop::Lost(msg) } else { Stop::Refused(msg) }
        })?;
        copy_home(env, sctx, &record).await.map_err(|e| format!("host {host}: --backup-copy before '{task}' failed: {e}; the step did not run"))?;
        env.reporter.emit(Event::Backup { host: host.into(), task: task.to_string(), backup: serde_json::to_value(&record).unwrap_or_default() });
        covering.push(record.clone());
        state.backups.push(record);
    }
    Ok(covering)
}

/// Why a destructive step did not run.
pub(super) enum Stop {
    /// Refused (by policy, the operator, or a failed backup): nothing changed.
    Refused(String),
    /// The host went away while its backup was being taken.
    Lost(String),
}

impl From<String> for Stop {
    fn from(msg: String) -> Stop {
        Stop::Refused(msg)
    }
}

/// Decides a destructive step. `Ok(how)` lets it run; `Err` says why it did not (nothing changed by it).
pub(super) async fn guard(env: &PlayEnv, sctx: &StepCtx<'_>, plan: &Plan, d: Destructive, state: &mut HostState) -> Result<String, Stop> {
    let host = sctx.host;
    let raw_name = sctx.task.display_name();
    let task = env.sources.templates.render_str(&raw_name, sctx.vars, &sctx.task.span).unwrap_or(raw_name);
    let safety = &env.safety;
    let tier = tier_of(env, sctx, &d)?;

    // When the flags alone refuse, say so now: no backup is needed for a step that will not run.
    let refused_early = matches!(safety.confirmer.policy.decide_without_prompt(host, &task, tier), Some(Decision::Refused { .. }));

    // Invariant 2: a verified backup taken in this run covers every path the step touches.
    let covering = if d.preserves.is_none() && !refused_early { backups(env, sctx, &d, &task, state).await? } else { Vec::new() };

    // Invariant 3: show it before it runs.
    env.reporter.emit(Event::Preview {
        host: host.into(),
        task: task.clone(),
        tier: tier.to_string(),
        reason: d.reason.clone(),
        // no_log: neither the commands (they may carry the content) nor either side of the diff.
        commands: if sctx.task.hides() { vec!["(hidden by no_log)".into()] } else { plan.commands.iter().map(Cmd::display).collect() },
        diff: if sctx.task.hides() { plan.diff.as_ref().map(|_| "(diff hidden by no_log)".to_string()) } else { plan.diff.as_ref().map(crate::modules::FileDiff::capped) },
        backups: covering.iter().map(|b| json!({"archive": b.archive, "bytes": b.bytes, "sha256": b.sha256, "id": b.id})).collect(),
        preserves: d.preserves.clone(),
    });

    // Invariant 4: the tier's confirmation or approval.
    let reporter = env.reporter.clone();
    let pause = move |f: &mut dyn FnMut()| reporter.pause(f);
    let decision = safety.confirmer.decide(host, &task, tier, &pause).await;
    let (word, how) = match &decision {
        Decision::Run { how } => ("run", how.clone()),
        Decision::Refused { msg } => ("refused", msg.clone()),
        Decision::Abort => ("abort", "the operator aborted the run".to_string()),
    };
    env.reporter.emit(Event::Approval { host: host.into(), task: task.clone(), tier: tier.to_string(), decision: word.into(), how: how.clone() });
    if safety.confirmer.policy.automation && word == "refused" {
        env.reporter.emit(Event::ApprovalRequest {
            host: host.into(),
            task: task.clone(),
            tier: tier.to_string(),
            playbook: safety.confirmer.policy.playbook.clone(),
            reason: d.reason.clone(),
            flag: if tier == Tier::Block { format!("--approve {}@{host}", safety.confirmer.policy.playbook) } else { "--yes".into() },
        });
    }
    match decision {
        Decision::Run { how } => Ok(how),
        Decision::Refused { msg } => Err(Stop::Refused(msg)),
        Decision::Abort => Err(Stop::Refused(format!("host {host}: the operator aborted the run before '{task}'; nothing was changed by it"))),
    }
}

/// With `--backup-copy DIR`: stream the archive here and check it (sha256, entries), with a progress bar.
pub(super) async fn copy_home(env: &PlayEnv, sctx: &StepCtx<'_>, record: &BackupRecord) -> Result<(), String> {
    let Some(dir) = &env.safety.backup_copy else { return Ok(()) };
    let bar = env.reporter.bytes_bar(sctx.host, "copying the backup here", record.bytes);
    let progress = |n: u64| {
        if let Some(b) = &bar {
            b.set_position(n);
        }
    };
    let res = backup::copy_home(&sctx.remote(), record, dir, &progress).await;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    res.map(|_| ())
}

/// A `backup` step taken for a later destructive step that this run cannot approve (no
/// terminal, no `--approve`, `--automation` on a tier above AUTO): `Some(why)`, and the backup
/// is refused before it starts. On the real 188 that backup is the whole PostgreSQL data
/// directory: long and disk-filling, for a step that will not run. A later step counts when
/// its declared paths overlap the backup's and its `when` does not say no now.
pub(super) fn backup_for_refused_step(env: &PlayEnv, sctx: &StepCtx<'_>, task: &Task, args: &serde_json::Value) -> Option<String> {
    let policy = &env.safety.confirmer.policy;
    let list = |v: Option<&serde_json::Value>| -> Vec<String> {
        match v {
            Some(serde_json::Value::String(s)) => vec![s.clone()],
            Some(serde_json::Value::Array(a)) => a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect(),
            _ => Vec::new(),
        }
    };
    let mut sources = list(args.get("path"));
    sources.extend(list(args.get("paths")));
    let tasks = env.play.all_tasks();
    let pos = tasks.iter().position(|t| t.span == task.span)?;
    let t = &env.sources.templates;
    for later in &tasks[pos + 1..] {
        let Some(decl) = &later.declared else { continue };
        if later.when.iter().any(|c| matches!(t.eval_bool(&c.expr, sctx.vars, &c.span), Ok(false))) {
            continue;
        }
        let paths: Vec<String> = decl.paths.iter().filter_map(|p| t.render_str(p, sctx.vars, &later.span).ok()).collect();
        if !paths.iter().any(|p| sources.iter().any(|s| crate::safety::paths::overlap(p, s))) {
            continue;
        }
        let d = Destructive { paths, services: decl.services.clone(), tier: decl.tier, ..Default::default() };
        let Ok(tier) = tier_of(env, sctx, &d) else { continue };
        let name = t.render_str(&later.display_name(), sctx.vars, &later.span).unwrap_or_else(|_| later.display_name());
        if let Some(Decision::Refused { msg }) = policy.decide_without_prompt(sctx.host, &name, tier) {
            return Some(format!("host {}: this backup is for '{name}' ({tier}), which this run cannot approve ({msg}); nothing was backed up, and nothing changed", sctx.host));
        }
    }
    None
}

/// Stage 6 as the step runs it: a destructive step's gate (see [`guard`]), with a stop signal
/// that came during its backup or prompt cancelling it; a `backup:` taken for a later step this
/// run cannot approve is refused (see [`backup_for_refused_step`]). `Ok(how)`: how it was
/// approved, if it needed to be.
pub(super) async fn protect(env: &PlayEnv, host: &str, sctx: &StepCtx<'_>, plan: &Plan, args: &serde_json::Value, req: Requirement, state: &mut HostState) -> Result<Option<String>, StepResult> {
    if interrupted(env) {
        return Err(not_started(host, sctx.task, None));
    }
    let mut approved = None;
    if let Some(d) = req.destructive {
        match guard(env, sctx, plan, d, state).await {
            Ok(how) => {
                // An interrupt that came during the backup or the prompt cancels the step.
                if interrupted(env) {
                    return Err(not_started(host, sctx.task, state.backups.last().map(|b| b.archive.clone())));
                }
                approved = Some(how);
            }
            Err(Stop::Refused(msg)) => return Err(refused(msg)),
            Err(Stop::Lost(msg)) => return Err(StepResult { msg: Some(msg), executed: false, ..StepResult::new(crate::report::Status::Unreachable) }),
        }
    }
    if sctx.task.module == "backup" {
        if let Some(msg) = backup_for_refused_step(env, sctx, sctx.task, args) {
            return Err(refused(msg));
        }
    }
    Ok(approved)
}
