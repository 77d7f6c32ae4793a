//! Runs a playbook: for each play, the matching hosts in `serial` batches, up
//! to `--forks` hosts at once. Each host goes through the play's tasks on its
//! own (a failed host stops, the others go on), then its notified handlers.
//! Unreachable hosts are reported apart. The exit code says what happened.

mod step;
pub mod vars;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::inventory::{pattern, Inventory};
use crate::playbook::{Play, Playbook, Serial};
use crate::report::{Event, Reporter, Status};
use crate::template::{Templates, Vars};
use crate::transport::Connection;

pub use step::{HostState, StepEnd};
pub use vars::VarSources;

/// Exit codes of `recover play` (see DESIGN.md).
pub mod exit {
    pub const OK: i32 = 0;
    pub const BAD_INPUT: i32 = 1;
    pub const FAILED: i32 = 2;
    pub const UNREACHABLE: i32 = 3;
    pub const REFUSED: i32 = 4;
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
}

/// Per-play shared state for the host tasks.
pub struct PlayEnv {
    pub sources: Arc<VarSources>,
    pub play: Arc<Play>,
    pub play_hosts: Vec<String>,
    pub reporter: Arc<Reporter>,
    pub check: bool,
    pub playbook_dir: PathBuf,
    pub project_root: PathBuf,
}

/// How a host ended.
#[derive(Clone, Copy, Debug, PartialEq)]
enum HostEnd {
    Ok,
    Failed,
    Unreachable,
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
    let sources = Arc::new(VarSources {
        inventory: inventory.clone(),
        templates: Templates::new(),
        extra: opts.extra_vars.clone(),
        playbook_dir: pb.dir().display().to_string(),
        check: opts.check,
        run_id: opts.run_id.clone(),
    });
    let conns: Arc<tokio::sync::Mutex<HashMap<String, Arc<Connection>>>> = Default::default();
    let mut states: HashMap<String, HostState> = HashMap::new();
    let mut dead: HashMap<String, HostEnd> = HashMap::new();
    for play in &pb.plays {
        let hosts = match select_hosts(&inventory, &play.hosts, opts.limit.as_deref()) {
            Ok(h) => h.into_iter().filter(|h| !dead.contains_key(h)).collect::<Vec<_>>(),
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
        let env = Arc::new(PlayEnv {
            sources: sources.clone(),
            play: Arc::new(play.clone()),
            play_hosts: hosts.clone(),
            reporter: reporter.clone(),
            check: opts.check,
            playbook_dir: pb.dir(),
            project_root: opts.project_root.clone(),
        });
        for batch in batches(&hosts, play.serial.as_ref()) {
            let sem = Arc::new(Semaphore::new(opts.forks.max(1)));
            let mut handles = Vec::new();
            for host in batch.clone() {
                reporter.add_host(&host);
                let state = states.remove(&host).unwrap_or_default();
                let (env, sem, conns) = (env.clone(), sem.clone(), conns.clone());
                handles.push(tokio::spawn(async move {
                    let _permit = sem.acquire_owned().await;
                    let mut state = state;
                    let end = run_host(&env, &host, &conns, &mut state).await;
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
                    break;
                }
            }
        }
    }
    let conns = std::mem::take(&mut *conns.lock().await);
    for (_, c) in conns {
        if let Ok(c) = Arc::try_unwrap(c) {
            c.close().await;
        }
    }
    let code = if dead.values().any(|e| *e == HostEnd::Unreachable) {
        exit::UNREACHABLE
    } else if dead.values().any(|e| *e == HostEnd::Failed) {
        exit::FAILED
    } else {
        exit::OK
    };
    reporter.emit(Event::Recap { hosts: reporter.counts(), exit_code: code });
    code
}

fn batches(hosts: &[String], serial: Option<&Serial>) -> Vec<Vec<String>> {
    let size = match serial {
        None => hosts.len(),
        Some(Serial::Count(n)) => *n,
        Some(Serial::Percent(p)) => ((hosts.len() as f64 * p / 100.0).floor() as usize).max(1),
    }
    .max(1);
    hosts.chunks(size).map(<[String]>::to_vec).collect()
}

async fn connect(env: &PlayEnv, host: &str, conns: &tokio::sync::Mutex<HashMap<String, Arc<Connection>>>) -> Result<Arc<Connection>, String> {
    if let Some(c) = conns.lock().await.get(host) {
        return Ok(c.clone());
    }
    let ctx = env.sources.inventory_context(host);
    let target = vars::target(&ctx, host)?;
    let conn = Arc::new(Connection::open(&target).await.map_err(|e| format!("host {host} ({}): {e}", target.address))?);
    conns.lock().await.insert(host.to_string(), conn.clone());
    Ok(conn)
}

async fn run_host(env: &PlayEnv, host: &str, conns: &tokio::sync::Mutex<HashMap<String, Arc<Connection>>>, state: &mut HostState) -> HostEnd {
    let first = env.play.tasks.first().map(|t| t.display_name()).unwrap_or_else(|| "connect".into());
    env.reporter.busy(host, "connecting");
    let conn = match connect(env, host, conns).await {
        Ok(c) => c,
        Err(msg) => {
            env.reporter.emit(Event::Task {
                host: host.to_string(),
                task: first,
                status: Status::Unreachable,
                msg: Some(msg),
                changes: Vec::new(),
                diff: None,
                note: None,
                item: None,
                output: None,
                ignored: false,
                check: env.check,
                duration_ms: 0,
            });
            return HostEnd::Unreachable;
        }
    };
    for task in &env.play.tasks {
        match step::run_task(env, host, &conn, task, state).await {
            StepEnd::Continue => {}
            StepEnd::Failed => return HostEnd::Failed,
            StepEnd::Unreachable => {
                conns.lock().await.remove(host);
                return HostEnd::Unreachable;
            }
        }
    }
    let notified = std::mem::take(&mut state.notified);
    for handler in &env.play.handlers {
        let hit = handler.name.as_ref().is_some_and(|n| notified.contains(n)) || handler.listen.iter().any(|l| notified.contains(l));
        if !hit {
            continue;
        }
        match step::run_task(env, host, &conn, handler, state).await {
            StepEnd::Continue => {}
            StepEnd::Failed => return HostEnd::Failed,
            StepEnd::Unreachable => return HostEnd::Unreachable,
        }
    }
    HostEnd::Ok
}
