//! Runs a playbook: for each play, the matching hosts in `serial` batches, up
//! to `--forks` hosts at once. Each host goes through the play's tasks on its
//! own (a failed host stops, the others go on), then its notified handlers.
//! Unreachable hosts are reported apart. The exit code says what happened.

mod flow;
mod linear;
mod state;
mod step;
pub mod vars;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::baseline::Baseline;
use crate::inventory::{pattern, Inventory};
use crate::safety::confirm::Confirmer;
use crate::safety::{lock, Policy};
use crate::playbook::{Play, Playbook, Serial};
use crate::report::{Event, Reporter, Status};
use crate::template::{Templates, Vars};
use crate::transport::Connection;

pub use state::HostState;
pub use step::StepEnd;
pub use vars::VarSources;

/// Each host's open connection, shared by the plays of a run.
type ConnMap = tokio::sync::Mutex<HashMap<String, Arc<Connection>>>;
/// The hosts whose lock this run holds: host -> (lock folder, user).
type LockMap = tokio::sync::Mutex<HashMap<String, (String, Option<String>)>>;

/// Exit codes of `recover play` (see DESIGN.md).
pub mod exit {
    pub const OK: i32 = 0;
    pub const BAD_INPUT: i32 = 1;
    pub const FAILED: i32 = 2;
    pub const UNREACHABLE: i32 = 3;
    pub const REFUSED: i32 = 4;
    /// Interrupted by the operator (Ctrl-C), as shells report SIGINT.
    pub const INTERRUPTED: i32 = 130;
}

/// How to run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub check: bool,
    pub forks: usize,
    pub extra_vars: Vars,
    pub limit: Option<String>,
    pub project_root: PathBuf,
    pub run_id: String,
    pub policy: Policy,
    pub backup_copy: Option<PathBuf>,
    /// Shared with the Ctrl-C handler.
    pub interrupted: Arc<std::sync::atomic::AtomicBool>,
    pub baseline: Option<Baseline>,
    /// The command line, for lock holders and the audit record.
    pub command_line: String,
    /// `--tags` / `--skip-tags`.
    pub only_tags: Vec<String>,
    pub skip_tags: Vec<String>,
    /// `--start-at-task`: a glob on task names.
    pub start_at_task: Option<String>,
    /// `-v` given this many times.
    pub verbosity: u8,
    /// `--step`: ask before each task.
    pub step: bool,
    /// Saved plans (see [`Safety::plan`]).
    pub plan: Option<Arc<crate::plan::Mode>>,
    /// `recover_timestamp` to use (a saved plan's), else the run's start.
    pub timestamp: Option<String>,
}

/// The safety side of a run: who decides destructive steps, the tiers, the run's identity.
pub struct Safety {
    /// Set by the first Ctrl-C: steps in flight finish, no new step starts.
    pub interrupted: Arc<std::sync::atomic::AtomicBool>,
    pub confirmer: Confirmer,
    pub baseline: Option<Baseline>,
    pub run_id: String,
    pub lock_holder: String,
    /// `--backup-copy DIR`: every backup is also streamed here and checked.
    pub backup_copy: Option<PathBuf>,
    /// Saved plans: recording one (`--save-plan`), or held to one (`recover apply`).
    pub plan: Option<Arc<crate::plan::Mode>>,
}

/// Per-play shared state for the host tasks.
pub struct PlayEnv {
    pub sources: Arc<VarSources>,
    pub play: Arc<Play>,
    pub play_hosts: vars::PlayHosts,
    pub reporter: Arc<Reporter>,
    pub check: bool,
    pub playbook_dir: PathBuf,
    pub project_root: PathBuf,
    pub safety: Arc<Safety>,
    /// Hosts whose lock this run holds: host -> (lock folder, user).
    pub locks: Arc<LockMap>,
    /// `--tags` / `--skip-tags`.
    pub only_tags: Vec<String>,
    pub skip_tags: Vec<String>,
    /// Set by `meta: end_play`: every host stops at its next task.
    pub end_play: std::sync::atomic::AtomicBool,
    /// `--start-at-task`, until a host reaches that task.
    pub start_at: Option<glob::Pattern>,
    /// The run's connections (a delegated task opens its host's here too).
    pub conns: Arc<ConnMap>,
    /// The user and kind each connection was opened with.
    pub opened: Arc<std::sync::Mutex<HashMap<String, (Option<String>, bool)>>>,
    /// `run_once` tasks: the result of the host that ran each (by the task's place).
    pub once: std::sync::Mutex<HashMap<String, Arc<tokio::sync::OnceCell<serde_json::Value>>>>,
    /// `--step`: the answer for each task (by its place), asked once for all hosts, and
    /// whether `c` ended the asking.
    pub step: Option<Arc<StepPrompts>>,
    /// `throttle`: each throttled task's permits (by the task's place).
    pub throttles: std::sync::Mutex<HashMap<String, Arc<Semaphore>>>,
    /// Set when a task with `any_errors_fatal` failed: the run stops after that task.
    pub fatal: Arc<std::sync::atomic::AtomicBool>,
    /// The `linear` strategy's gate (none for `free` and `host_pinned`).
    pub gate: Option<Arc<linear::Gate>>,
}

/// The run's capabilities a module may use (see [`crate::modules::Run`]).
impl crate::modules::Run for PlayEnv {
    fn verbosity(&self) -> u8 {
        self.sources.verbosity
    }
    fn change_inventory(&self, f: &mut dyn FnMut(&mut crate::inventory::Inventory) -> bool) -> bool {
        self.sources.change_inventory(f)
    }
    fn pause(&self, f: &mut dyn FnMut()) {
        self.reporter.pause(f)
    }
}

/// `--step`'s answers (see [`PlayEnv::step`]).
#[derive(Default)]
pub struct StepPrompts {
    pub answers: std::sync::Mutex<HashMap<String, Arc<tokio::sync::OnceCell<bool>>>>,
    pub go_on: std::sync::atomic::AtomicBool,
}

/// How a host ended.
#[derive(Clone, Copy, Debug, PartialEq)]
enum HostEnd {
    Ok,
    Failed,
    Unreachable,
    Refused,
    Interrupted,
}

/// The magic variables of the run: tags, forks, limit, inventory sources, the configuration
/// file, diff mode, as ansible-core gives them.
fn run_magic(opts: &RunOptions, inventory: &Inventory, reporter: &Reporter) -> crate::template::Vars {
    use serde_json::json;
    let mut m = crate::template::Vars::new();
    m.insert("ansible_run_tags".into(), if opts.only_tags.is_empty() { json!(["all"]) } else { json!(opts.only_tags) });
    m.insert("ansible_skip_tags".into(), json!(opts.skip_tags));
    m.insert("ansible_forks".into(), json!(opts.forks));
    if let Some(l) = &opts.limit {
        m.insert("ansible_limit".into(), json!(l));
    }
    m.insert("ansible_inventory_sources".into(), json!(inventory.sources.iter().map(|p| p.display().to_string()).collect::<Vec<_>>()));
    m.insert("ansible_config_file".into(), json!(crate::ansible_cfg::current().file.as_ref().map(|p| p.display().to_string())));
    m.insert("ansible_diff_mode".into(), json!(reporter.diff()));
    m.insert("ansible_version".into(), crate::ansible_version());
    m
}

/// A play's hosts in its `order:` (the inventory's by default).
fn order_hosts(mut hosts: Vec<String>, order: Option<&str>) -> Vec<String> {
    match order {
        Some("reverse_inventory") => hosts.reverse(),
        Some("sorted") => hosts.sort(),
        Some("reverse_sorted") => {
            hosts.sort();
            hosts.reverse();
        }
        Some("shuffle") => {
            let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as i128).unwrap_or(0);
            crate::template::pyrandom::PyRandom::from_int_seed(seed).shuffle(&mut hosts);
        }
        _ => {}
    }
    hosts
}

/// The hosts a play runs on: its pattern, narrowed by `--limit`.
pub fn select_hosts(inv: &Inventory, pattern_text: &str, limit: Option<&str>) -> Result<Vec<String>, String> {
    let mut hosts = pattern::select(inv, pattern_text)?;
    if let Some(l) = limit {
        let allowed = pattern::select(inv, l)?;
        hosts.retain(|h| allowed.contains(h));
    }
    Ok(hosts)
}

/// Runs every play of `pb`; returns the exit code.
pub async fn run(pb: &Playbook, inventory: Arc<Inventory>, opts: &RunOptions, reporter: Arc<Reporter>) -> i32 {
    let sources = VarSources::with_timestamp(inventory.clone(), Templates::new(), opts.extra_vars.clone(), pb.dir().display().to_string(), opts.check, opts.run_id.clone(), opts.verbosity, opts.timestamp.clone());
    sources.set_run_magic(run_magic(opts, &inventory, &reporter));
    reporter.add_secrets(secret_values(&sources, pb));
    // What a vault decrypted is a secret wherever it appears, as with no_log.
    reporter.add_secrets(crate::vault::decrypted_values());
    let conns: Arc<ConnMap> = Default::default();
    let opened: Arc<std::sync::Mutex<HashMap<String, (Option<String>, bool)>>> = Default::default();
    let fatal: Arc<std::sync::atomic::AtomicBool> = Default::default();
    let safety = Arc::new(Safety {
        interrupted: opts.interrupted.clone(),
        confirmer: Confirmer::new(opts.policy.clone()),
        baseline: opts.baseline.clone(),
        run_id: opts.run_id.clone(),
        lock_holder: lock::holder_json(&opts.policy.operator, &opts.run_id, &opts.command_line),
        backup_copy: opts.backup_copy.clone(),
        plan: opts.plan.clone(),
    });
    let locks: Arc<LockMap> = Default::default();
    let step_prompts = opts.step.then(|| Arc::new(StepPrompts::default()));
    let mut states: HashMap<String, HostState> = HashMap::new();
    let mut dead: HashMap<String, HostEnd> = HashMap::new();
    for play in &pb.plays {
        if fatal.load(std::sync::atomic::Ordering::SeqCst) {
            break;
        }
        // The inventory as `add_host` and `group_by` of earlier plays left it.
        let hosts = match select_hosts(&sources.inventory(), &play.hosts, opts.limit.as_deref()) {
            Ok(h) => order_hosts(h.into_iter().filter(|h| !dead.contains_key(h)).collect::<Vec<_>>(), play.order.as_deref()),
            Err(e) => {
                eprintln!("error: play '{}': {e}", play.name);
                return exit::BAD_INPUT;
            }
        };
        if hosts.is_empty() {
            reporter.emit(Event::NoHosts { play: play.name.clone(), pattern: play.hosts.clone() });
            continue;
        }
        reporter.emit(Event::PlayStart { play: play.name.clone(), hosts: hosts.clone(), check: opts.check });
        let mut play = play.clone();
        if !play.vars_prompt.is_empty() {
            match prompt_vars(&play, &sources, &opts.extra_vars, &reporter) {
                Ok(v) => play.vars.extend(v),
                Err(e) => {
                    eprintln!("error: play '{}': {e}", play.name);
                    return exit::BAD_INPUT;
                }
            }
        }
        let play = &play;
        let env = Arc::new(PlayEnv {
            sources: sources.clone(),
            play: Arc::new(play.clone()),
            play_hosts: vars::PlayHosts::of_play(&hosts, &play.name, &play.role_names),
            reporter: reporter.clone(),
            check: opts.check,
            playbook_dir: pb.dir(),
            project_root: opts.project_root.clone(),
            safety: safety.clone(),
            locks: locks.clone(),
            only_tags: opts.only_tags.clone(),
            skip_tags: opts.skip_tags.clone(),
            end_play: Default::default(),
            start_at: opts.start_at_task.as_deref().and_then(|p| glob::Pattern::new(p).ok()),
            conns: conns.clone(),
            opened: opened.clone(),
            once: Default::default(),
            throttles: Default::default(),
            step: step_prompts.clone(),
            fatal: fatal.clone(),
            gate: (!matches!(play.strategy.as_deref(), Some("free" | "host_pinned"))).then(|| Arc::new(linear::Gate::new(opts.forks))),
        });
        for batch in batches(&hosts, play.serial.as_ref()) {
            if opts.interrupted.load(std::sync::atomic::Ordering::SeqCst) {
                break;
            }
            let sem = Arc::new(Semaphore::new(opts.forks.max(1)));
            let mut handles = Vec::new();
            if let Some(g) = &env.gate {
                g.begin(&batch);
            }
            let gone = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let batch_len = batch.len().max(1);
            for host in batch.clone() {
                reporter.add_host(&host);
                let state = states.remove(&host).unwrap_or_default();
                let (env, sem, conns, gone) = (env.clone(), sem.clone(), conns.clone(), gone.clone());
                handles.push(tokio::spawn(async move {
                    // linear: the gate takes a fork for each step; free: a fork for the host.
                    let _leave = linear::Leave { gate: env.gate.clone(), host: host.clone() };
                    let _permit = if env.gate.is_none() { sem.acquire_owned().await.ok() } else { None };
                    let mut state = state;
                    let end = run_host(&env, &host, &conns, &mut state).await;
                    // max_fail_percentage: past it, the batch's other hosts stop after the
                    // step they are at (before this host leaves the gate), as ansible-core's.
                    if end != HostEnd::Ok {
                        let n = gone.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                        if env.play.max_fail_percentage.is_some_and(|max| n as f64 * 100.0 / batch_len as f64 > max) {
                            // As ansible-core: the run ends (no later batch, no later play).
                            env.fatal.store(true, std::sync::atomic::Ordering::SeqCst);
                            env.end_play.store(true, std::sync::atomic::Ordering::SeqCst);
                        }
                    }
                    env.reporter.idle(&host);
                    (host, state, end)
                }));
            }
            let mut failed_in_batch = 0usize;
            for h in handles {
                match h.await {
                    Ok((host, state, end)) => {
                        if end != HostEnd::Ok {
                            failed_in_batch += 1;
                            dead.insert(host.clone(), end);
                        }
                        states.insert(host, state);
                    }
                    Err(e) => eprintln!("internal error: a host task panicked: {e}"),
                }
            }
            if let Some(max) = play.max_fail_percentage {
                let pct = failed_in_batch as f64 * 100.0 / batch.len().max(1) as f64;
                if pct > max {
                    eprintln!("stopping play '{}': {pct:.0}% of the batch failed (max_fail_percentage {max})", play.name);
                    for h in hosts.iter().filter(|h| !batch.contains(h)) {
                        dead.entry(h.clone()).or_insert(HostEnd::Failed);
                    }
                    // As ansible-core, no later play runs either.
                    fatal.store(true, std::sync::atomic::Ordering::SeqCst);
                    break;
                }
            }
        }
    }
    let conns = std::mem::take(&mut *conns.lock().await);
    let held = std::mem::take(&mut *locks.lock().await);
    for (host, c) in conns {
        if let Some((dir, user)) = held.get(&host) {
            if let Err(e) = lock::release(&c, dir, &opts.run_id, user.clone()).await {
                eprintln!(
                    "warning: host {host}: could not release the lock {dir} ({e}); the next run from this machine takes it over, a run from elsewhere needs --break-lock"
                );
            }
        }
        if let Ok(c) = Arc::try_unwrap(c) {
            c.close().await;
        }
    }
    // The most urgent first: a step broke, then a host is gone, then safety said no.
    let code = if opts.interrupted.load(std::sync::atomic::Ordering::SeqCst) {
        exit::INTERRUPTED
    } else if dead.values().any(|e| *e == HostEnd::Failed) {
        exit::FAILED
    } else if dead.values().any(|e| *e == HostEnd::Unreachable) {
        exit::UNREACHABLE
    } else if dead.values().any(|e| *e == HostEnd::Refused) {
        exit::REFUSED
    } else {
        exit::OK
    };
    reporter.emit(Event::Recap { hosts: reporter.counts(), exit_code: code });
    code
}

/// `vars_prompt`: each variable asked of the operator at the terminal (hidden unless `private:
/// false`, twice with `confirm`, hashed with `encrypt`), before any host of the play is
/// touched; a variable given with `-e` is not asked. With no terminal the `default` is taken,
/// and a prompt without one is an error.
fn prompt_vars(play: &crate::playbook::Play, sources: &VarSources, extra: &Vars, reporter: &Reporter) -> Result<Vars, String> {
    let mut out = Vars::new();
    let terminal = crate::safety::confirm::interactive();
    for p in &play.vars_prompt {
        if extra.contains_key(&p.name) {
            continue;
        }
        let default = p.default.as_ref().map(|d| d.as_str().map(str::to_string).unwrap_or_else(|| d.to_string()));
        let text = p.prompt.clone().unwrap_or_else(|| p.name.clone());
        let answer = if !terminal {
            default.clone().ok_or_else(|| format!("{}: vars_prompt '{}' needs an answer and there is no terminal: give it with -e {}=...", p.span, p.name, p.name))?
        } else {
            let shown = match &default {
                Some(d) => format!("{text} [{d}]: "),
                None => format!("{text}: "),
            };
            let mut value = Err("no answer".to_string());
            reporter.pause(&mut || {
                let ask = |label: &str| -> Result<String, String> {
                    if p.private {
                        return crate::safety::confirm::read_hidden(label).map_err(|e| e.to_string());
                    }
                    eprint!("{label}");
                    let _ = std::io::Write::flush(&mut std::io::stderr());
                    {
                        let mut line = String::new();
                        std::io::BufRead::read_line(&mut std::io::stdin().lock(), &mut line).map_err(|e| e.to_string())?;
                        Ok(line.trim_end_matches(['\r', '\n']).to_string())
                    }
                };
                value = (|| loop {
                    let first = ask(&shown)?;
                    if !p.confirm {
                        return Ok(first);
                    }
                    let second = ask(&format!("confirm {shown}"))?;
                    if first == second {
                        return Ok(first);
                    }
                    eprintln!("***** VALUES ENTERED DO NOT MATCH ****");
                })();
            });
            let v = value?;
            match (&default, v.is_empty()) {
                (Some(d), true) => d.clone(),
                _ => v,
            }
        };
        let value = match &p.encrypt {
            Some(scheme) => {
                let ctx = crate::template::to_value(&serde_json::json!({"v": answer, "s": scheme, "salt": p.salt}));
                let expr = if p.salt.is_some() { "{{ v | password_hash(s, salt) }}" } else { "{{ v | password_hash(s) }}" };
                sources.templates.render_str(expr, &ctx, &p.span).map_err(|e| e.to_string())?
            }
            None => answer,
        };
        reporter.add_secrets([value.clone()].into_iter().filter(|_| p.private));
        // An answer is data, never a template (Ansible marks it unsafe).
        out.insert(p.name.clone(), crate::template::unsafe_text(value));
    }
    Ok(out)
}


/// The values of secret-named variables (see `report::is_secret_name`), raw and
/// rendered per host, so that no output shows them.
fn secret_values(sources: &Arc<VarSources>, pb: &Playbook) -> Vec<String> {
    let mut out = Vec::new();
    let mut raw = |v: &serde_json::Value| {
        if let Some(s) = v.as_str() {
            out.push(s.to_string());
        } else if v.is_number() {
            out.push(v.to_string());
        }
    };
    let mut names: Vec<String> = Vec::new();
    for (k, v) in sources.extra.iter().chain(pb.plays.iter().flat_map(|p| p.vars.iter().chain(p.role_defaults.iter()))) {
        if crate::report::is_secret_name(k) {
            raw(v);
            names.push(k.clone());
        }
    }
    for host in sources.inventory().hosts.keys() {
        for (k, v) in sources.inventory().host_vars(host) {
            if crate::report::is_secret_name(&k) {
                raw(&v);
                names.push(k);
            }
        }
    }
    names.sort();
    names.dedup();
    for host in sources.inventory().hosts.keys() {
        let ctx = sources.inventory_context(host);
        for n in &names {
            if let Ok(v) = ctx.get_attr(n) {
                if !v.is_undefined() && v.kind() != minijinja::value::ValueKind::Invalid {
                    out.push(crate::template::pyrepr::py_str(&v));
                }
            }
        }
    }
    out.retain(|s| !crate::template::is_template(s));
    out
}

fn batches(hosts: &[String], serial: Option<&Serial>) -> Vec<Vec<String>> {
    // A batch size as ansible-core computes it: a percentage of all the play's hosts, at least 1.
    let size = |s: &Serial| -> usize {
        match s {
            Serial::Count(n) => *n,
            Serial::Percent(p) => (hosts.len() as f64 * p / 100.0).floor() as usize,
            Serial::List(_) => hosts.len(),
        }
        .max(1)
    };
    let sizes: Vec<usize> = match serial {
        None => vec![hosts.len().max(1)],
        Some(Serial::List(list)) => list.iter().map(size).collect(),
        Some(s) => vec![size(s)],
    };
    let mut out = Vec::new();
    let mut rest = hosts;
    let mut i = 0;
    while !rest.is_empty() {
        let n = sizes[i.min(sizes.len() - 1)].min(rest.len());
        out.push(rest[..n].to_vec());
        rest = &rest[n..];
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_batches_as_ansible_core_makes_them() {
        let hosts: Vec<String> = (1..=10).map(|i| format!("h{i}")).collect();
        let sizes = |s: Option<Serial>| batches(&hosts, s.as_ref()).iter().map(Vec::len).collect::<Vec<_>>();
        assert_eq!(sizes(None), vec![10]);
        assert_eq!(sizes(Some(Serial::Count(3))), vec![3, 3, 3, 1]);
        assert_eq!(sizes(Some(Serial::Percent(25.0))), vec![2, 2, 2, 2, 2]);
        assert_eq!(sizes(Some(Serial::List(vec![Serial::Count(1), Serial::Count(3), Serial::Percent(50.0)]))), vec![1, 3, 5, 1]);
        assert!(batches(&[], Some(&Serial::Count(2))).is_empty());
    }
}

/// Whether a play without `gather_facts:` gathers: `gathering` in ansible.cfg or `ANSIBLE_GATHERING` (`implicit`, the
/// default, gathers; `explicit` does not; `smart` gathers once, as recover always does).
fn gathering_default() -> bool {
    crate::ansible_cfg::current().get("gathering").as_deref().map(str::trim) != Some("explicit")
}

/// Why a host could not start: gone, or locked by another run.
pub(crate) enum ConnectError {
    Unreachable(String),
    Locked(String),
}

/// Names that mean this machine when no inventory host has them (Ansible's implicit localhost).
fn implicit_local(inv: &Inventory, host: &str) -> bool {
    !inv.hosts.contains_key(host) && matches!(host, "localhost" | "127.0.0.1" | "::1")
}

pub(crate) async fn connect(env: &PlayEnv, host: &str, conns: &ConnMap) -> Result<Arc<Connection>, ConnectError> {
    let ctx = env.sources.inventory_context(host);
    let mut target = vars::target(&ctx, host).map_err(ConnectError::Unreachable)?;
    // The play's `remote_user` and `connection`, where the host's variables do not say.
    let defined = |k: &str| ctx.get_attr(k).ok().is_some_and(|v| !v.is_undefined() && !v.is_none());
    let cfg = crate::ansible_cfg::current();
    if target.user.is_none() {
        target.user = env.play.remote_user.clone().or_else(|| cfg.get("remote_user"));
    }
    if target.port.is_none() {
        target.port = env.play.port.or_else(|| cfg.get("remote_port").and_then(|p| p.trim().parse().ok()));
    }
    if target.key_file.is_none() {
        target.key_file = cfg.paths("private_key_file").first().map(|p| p.display().to_string());
    }
    // ansible.cfg's ssh_args, timeout and host_key_checking, before the host's own arguments.
    let mut args: Vec<String> = Vec::new();
    if let Some(a) = cfg.get("ssh_args") {
        args.push(a);
    }
    if let Some(t) = cfg.get("timeout") {
        args.push(format!("-o ConnectTimeout={}", t.trim()));
    }
    if cfg.flag("host_key_checking") == Some(false) {
        args.push("-o StrictHostKeyChecking=no".into());
    }
    if !args.is_empty() {
        args.extend(target.common_args.take());
        target.common_args = Some(args.join(" "));
    }
    // become_method / _flags / _exe: the host's variables, else the play's keywords, else ansible.cfg.
    {
        let kw = &env.play.become_kw;
        let render = |t: &Option<String>| -> Result<Option<String>, ConnectError> {
            match t {
                Some(t) => env.sources.templates.render_str(t, &ctx, &env.play.span).map(Some).map_err(|e| ConnectError::Unreachable(format!("host {host}: {e}"))),
                None => Ok(None),
            }
        };
        if !defined("ansible_become_method") {
            if let Some(m) = render(&kw.method)?.or_else(|| cfg.get("become_method")) {
                target.r#become.method = crate::transport::BecomeMethod::parse(&m).map_err(|e| ConnectError::Unreachable(format!("host {host}: {e}")))?;
            }
        }
        if !defined("ansible_become_flags") {
            target.r#become.flags = render(&kw.flags)?.or_else(|| cfg.get("become_flags"));
        }
        if !defined("ansible_become_exe") {
            target.r#become.exe = render(&kw.exe)?.or_else(|| cfg.get("become_exe"));
        }
    }
    if !defined("ansible_connection") && env.play.connection.as_deref() == Some("local") {
        target.local = true;
    }
    // Ansible's implicit localhost has `ansible_connection: local` as its own variable.
    if implicit_local(&env.sources.inventory(), host) {
        target.local = true;
        target.user = None;
    }
    let want = (target.user.clone(), target.local);
    if let Some(c) = conns.lock().await.get(host) {
        let had = env.opened.lock().ok().and_then(|m| m.get(host).cloned());
        if let Some(had) = had {
            if had != want && (want.0.is_some() || want.1) {
                return Err(ConnectError::Unreachable(format!(
                    "host {host}: this play connects as {} ({}), but the run's connection to it is as {} ({}); recover keeps one connection per host: not supported",
                    want.0.as_deref().unwrap_or("the login user"),
                    if want.1 { "local" } else { "ssh" },
                    had.0.as_deref().unwrap_or("the login user"),
                    if had.1 { "local" } else { "ssh" }
                )));
            }
        }
        return Ok(c.clone());
    }
    let conn = Arc::new(Connection::open(&target).await.map_err(|e| ConnectError::Unreachable(format!("host {host} ({}): {e}", target.address)))?);
    if let Ok(mut m) = env.opened.lock() {
        m.insert(host.to_string(), want);
    }
    conns.lock().await.insert(host.to_string(), conn.clone());
    if !env.check {
        // Invariant 8: one operator per host.
        let dir = ctx
            .get_attr("recover_lock_dir")
            .ok()
            .filter(|v| !v.is_undefined())
            .map(|v| crate::template::pyrepr::py_str(&v))
            .unwrap_or_else(|| "/run/lock/recover".into());
        let (escalate, user) = vars::become_default(&ctx);
        let user = escalate.then(|| user.unwrap_or_else(|| "root".into()));
        let policy = &env.safety.confirmer.policy;
        // --automation: the fleet's freeze, kept on every host, is read with the lock.
        let freeze_file = policy.automation.then(|| {
            ctx.get_attr("recover_freeze_file")
                .ok()
                .filter(|v| !v.is_undefined() && !v.is_none())
                .map(|v| crate::template::pyrepr::py_str(&v))
                .unwrap_or_else(|| crate::safety::freeze::DEFAULT_HOST_FREEZE_FILE.into())
        });
        let mut freeze = lock::HostFreeze::None;
        match lock::acquire(&conn, &dir, &env.safety.lock_holder, policy.break_lock, user.clone(), freeze_file.as_deref(), &mut freeze).await {
            Ok(previous) => {
                if let Some((previous, why)) = previous {
                    env.reporter.emit(Event::LockBroken { host: host.into(), previous, why });
                    if let Some(f) = &freeze_file {
                        freeze = lock::read_freeze(&conn, f, user.clone()).await.unwrap_or_else(|e| lock::HostFreeze::Unreadable(format!("the host's freeze record {f} could not be read ({e}): treated as a freeze")));
                    }
                }
                match freeze {
                    lock::HostFreeze::None => {
                        if freeze_file.is_some() {
                            crate::safety::freeze::cache(host, None);
                        }
                    }
                    lock::HostFreeze::Frozen(f) => {
                        env.safety.confirmer.freeze_host(host, format!("automation is frozen on this host since {} by {}: {}", f.since, f.by, f.reason));
                        crate::safety::freeze::cache(host, Some(&f));
                    }
                    lock::HostFreeze::Unreadable(why) => env.safety.confirmer.freeze_host(host, why),
                }
                conn.set_track(crate::transport::Track { runfile: lock::runfile(&dir), user: user.clone() });
                env.locks.lock().await.insert(host.to_string(), (dir, user));
            }
            Err(lock::LockError::Held(msg)) => return Err(ConnectError::Locked(format!("host {host}: {msg}"))),
            Err(lock::LockError::Lost(msg)) => return Err(ConnectError::Unreachable(format!("host {host}: {msg} (taking the host lock)"))),
        }
    }
    Ok(conn)
}

async fn run_host(env: &PlayEnv, host: &str, conns: &ConnMap, state: &mut HostState) -> HostEnd {
    state.place.clear();
    let first = env.play.all_tasks().first().map(|t| t.display_name()).unwrap_or_else(|| "connect".into());
    let first = if conns.lock().await.contains_key(host) { first } else { format!("connect ({first})") };
    env.reporter.busy(host, "connecting");
    let fork = match &env.gate {
        Some(g) => g.fork().await,
        None => None,
    };
    let connected = connect(env, host, conns).await;
    drop(fork);
    let conn = match connected {
        Ok(c) => c,
        Err(e) => {
            let (status, msg, end) = match e {
                ConnectError::Unreachable(m) => (Status::Unreachable, m, HostEnd::Unreachable),
                ConnectError::Locked(m) => (Status::Refused, m, HostEnd::Refused),
            };
            flow::report(env, host, first, status, Some(msg), None, None);
            return end;
        }
    };
    // gather_facts (on unless the play says no, as in Ansible): once per host per run, the
    // later plays reuse the facts.
    if env.play.gather_facts.unwrap_or(gathering_default()) {
        let mut args = serde_json::json!({ "gather_subset": env.play.gather_subset });
        if let Some(t) = env.play.gather_timeout {
            args["gather_timeout"] = t.into();
        }
        if let Some(p) = &env.play.fact_path {
            args["fact_path"] = p.clone().into();
        }
        let task = crate::playbook::Task::synthetic("Gathering Facts", "setup", args, env.play.span.clone());
        if state.gathered {
            flow::report(env, host, "Gathering Facts".into(), Status::Ok, None, Some("facts gathered earlier in this run".into()), None);
        } else {
            match step::run_task(env, host, &conn, &task, state).await {
                StepEnd::Continue => {}
                StepEnd::Failed => return HostEnd::Failed,
                StepEnd::Refused => return HostEnd::Refused,
                StepEnd::Unreachable => {
                    conns.lock().await.remove(host);
                    return HostEnd::Unreachable;
                }
            }
        }
    }
    // Templated vars_files, found with the host's facts (a play's own: an earlier play's go).
    state.vars_files.clear();
    state.handlers.clear();
    if !env.play.vars_files.is_empty() {
        if let Err(e) = step::load_vars_files(env, host, state) {
            flow::report(env, host, "vars_files".into(), Status::Failed, Some(e.to_string()), None, None);
            return HostEnd::Failed;
        }
    }
    let flow = flow::run_items(env, host, &conn, &env.play.tasks, state).await;
    // Handlers run after the tasks (and after a failure with force_handlers).
    let flow = match flow {
        // As Ansible: a host ended by `meta: end_host`/`end_play` runs no handlers.
        flow::Flow::Continue => flow::run_handlers(env, host, &conn, state).await,
        flow::Flow::Failed if env.play.force_handlers => {
            flow::run_handlers(env, host, &conn, state).await;
            flow::Flow::Failed
        }
        f => f,
    };
    match flow {
        flow::Flow::Continue | flow::Flow::EndHost | flow::Flow::EndPlay => {}
        flow::Flow::Failed => return HostEnd::Failed,
        flow::Flow::Refused => return HostEnd::Refused,
        flow::Flow::Interrupted => return HostEnd::Interrupted,
        flow::Flow::Unreachable => {
            // A delegated host that could not be reached leaves this host's own connection (and
            // its lock) in place, to be released at the end of the run.
            if !state.delegate_unreachable {
                conns.lock().await.remove(host);
            }
            return HostEnd::Unreachable;
        }
    }
    HostEnd::Ok
}
