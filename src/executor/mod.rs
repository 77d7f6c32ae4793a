//! Runs a playbook: for each play, the matching hosts in `serial` batches, up
//! to `--forks` hosts at once. Each host goes through the play's tasks on its
//! own (a failed host stops, the others go on), then its notified handlers.
//! Unreachable hosts are reported apart. The exit code says what happened.

mod connect;
mod flow;
mod host;
mod run;
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
use crate::safety::Policy;
use crate::playbook::Play;
use crate::report::Reporter;
use crate::template::Vars;
use crate::transport::Connection;

pub use state::HostState;
pub use step::StepEnd;
pub(crate) use connect::{connect, ConnectError};
pub use run::run;
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
    /// The modules the playbook was loaded with (an include loads with them too).
    pub catalog: &'static dyn crate::playbook::Catalog,
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
