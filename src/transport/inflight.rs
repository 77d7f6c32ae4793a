//! Commands in flight: every tracked command this process started on a host, so that a second
//! Ctrl-C (or SIGTERM) can end them there.

use std::sync::Arc;

use super::shell::{self};
use super::{quote, ssh};

/// Where a connection records its tracked commands: the run file beside the host lock, and
/// the user the lock (and the file) belongs to.
#[derive(Clone, Debug)]
pub struct Track {
    pub runfile: String,
    pub user: Option<String>,
}

/// A tracked command under way on a host, for [`kill_inflight`].
pub(super) struct Inflight {
    pub(super) host: String,
    pub(super) session: Option<Arc<openssh::Session>>,
    pub(super) runfile: String,
    /// Who may signal it: the lock user, or root through sudo when it runs as another user.
    pub(super) sudo: bool,
    pub(super) user: Option<String>,
    pub(super) label: String,
}

pub(super) static INFLIGHT: std::sync::Mutex<Vec<(u64, Inflight)>> = std::sync::Mutex::new(Vec::new());

pub(super) static NEXT_INFLIGHT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Removes its entry from [`INFLIGHT`] when the command ends (or its future is dropped).
pub(super) struct InflightGuard(pub(super) u64);

impl Drop for InflightGuard {
    fn drop(&mut self) {
        if let Ok(mut v) = INFLIGHT.lock() {
            v.retain(|(id, _)| *id != self.0);
        }
    }
}

/// A script that prints `PGID LABEL` when the tracked command recorded in `runfile` (see
/// [`Cmd::wrapped_tracked`], which writes it) is still running, and nothing otherwise.
pub fn runfile_live_script(runfile: &str) -> String {
    let rf = quote::quote(runfile);
    // The run file, and those of the inventory hosts that shared the lock (`RUNFILE.<host>`).
    format!("for f in {rf} {rf}.*; do p=; read p rest < \"$f\" 2>/dev/null || continue; [ -n \"$p\" ] || continue; ps -p \"$p\" >/dev/null 2>&1 && {{ printf '%s %s' \"$p\" \"$rest\"; exit 0; }}; done; exit 0")
}

/// How an aborted run left a tracked command: killed (confirmed gone), or maybe still running.
#[derive(Debug)]
pub struct KillReport {
    pub host: String,
    pub label: String,
    pub killed: bool,
}

/// Kills, on their hosts, the tracked commands this process has under way (a second Ctrl-C):
/// TERM to the process group, KILL after 2 s, each over a channel of its own. Each report says
/// whether the group is confirmed gone; `None` for a host that did not answer within `limit`.
pub async fn kill_inflight(limit: std::time::Duration) -> Vec<KillReport> {
    let items: Vec<Inflight> = INFLIGHT.lock().map(|mut v| v.drain(..).map(|(_, i)| i).collect()).unwrap_or_default();
    let mut reports = Vec::new();
    let mut tasks = Vec::new();
    for i in items {
        tasks.push(tokio::spawn(async move {
            let rf = quote::quote(&i.runfile);
            let kill = if i.sudo { "sudo -n kill" } else { "kill" };
            let script = format!(
                "read p rest < {rf} 2>/dev/null || exit 0; [ -n \"$p\" ] || exit 0; {kill} -TERM -\"$p\" 2>/dev/null; \
                 for i in 1 2 3 4 5 6 7 8 9 10; do ps -p \"$p\" >/dev/null 2>&1 || {{ true > {rf} 2>/dev/null; exit 0; }}; sleep 0.2; done; \
                 {kill} -KILL -\"$p\" 2>/dev/null; sleep 0.3; ps -p \"$p\" >/dev/null 2>&1 && exit 1; true > {rf} 2>/dev/null; exit 0"
            );
            let mut argv: Vec<String> = Vec::new();
            if let Some(u) = &i.user {
                argv.extend(["sudo", "-n", "-H", "-u", u, "--"].map(String::from));
            }
            argv.extend(["sh".to_string(), "-c".to_string(), script]);
            let out = match &i.session {
                Some(s) => tokio::time::timeout(limit, ssh::run_channel(s, &argv)).await.ok().and_then(Result::ok),
                None => tokio::time::timeout(limit, shell::run_local_once(&argv)).await.ok().and_then(Result::ok),
            };
            KillReport { host: i.host, label: i.label, killed: out.is_some_and(|o| o.ok()) }
        }));
    }
    for t in tasks {
        if let Ok(r) = t.await {
            reports.push(r);
        }
    }
    reports
}
