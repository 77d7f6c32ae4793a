//! The board's state: the last gate pass, run by the server itself on its own clock.
//!
//! One task runs the gates every interval (as `check --watch`) and keeps the report; pages
//! and event streams read the kept report and are told of a new one through a watch channel,
//! so no browser ever makes a probe run.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::watch;

use crate::baseline::Baseline;
use crate::executor::VarSources;
use crate::gates::{Checker, Report};

/// What the pages show of the gates.
#[derive(Clone, Default)]
pub struct Snapshot {
    pub report: Option<Report>,
    /// Gate passes run so far (every probe of the baseline once per pass).
    pub passes: u64,
    pub max_attempts: Option<u32>,
    pub interval: u64,
    pub baseline: String,
    /// The phases in the baseline's order: name and what it depends on.
    pub phases: Vec<(String, Vec<String>)>,
    /// The automation gate's conditions: name and phase.
    pub automation: Vec<(String, String)>,
    pub freeze: Option<String>,
}

pub struct Board {
    state: RwLock<Snapshot>,
    tx: watch::Sender<u64>,
}

impl Board {
    /// The board, and its gate task started.
    pub fn start(baseline: Baseline, sources: Arc<VarSources>, interval: u64, max_attempts: Option<u32>, parallel: usize) -> Arc<Board> {
        let snap = Snapshot {
            report: None,
            passes: 0,
            max_attempts,
            interval,
            baseline: baseline.path.display().to_string(),
            phases: baseline.phases.iter().map(|p| (p.name.clone(), p.depends_on.clone())).collect(),
            automation: baseline.automation_gate.iter().map(|c| (c.name.clone(), c.phase.clone())).collect(),
            freeze: freeze_state(),
        };
        let (tx, _) = watch::channel(0);
        let board = Arc::new(Board { state: RwLock::new(snap), tx });
        let mut checker = Checker::new(baseline, sources, false);
        checker.parallel = parallel;
        let checker = Arc::new(checker);
        let b = board.clone();
        tokio::spawn(async move {
            let mut pass = 0u32;
            loop {
                let report = checker.pass().await;
                pass += 1;
                let green = report.exit_code() == 0;
                if let Ok(mut s) = b.state.write() {
                    s.report = Some(report);
                    s.passes += 1;
                    s.freeze = freeze_state();
                }
                b.tx.send_modify(|v| *v += 1);
                // As `check --watch`: a green pass or the last attempt ends the passes.
                if max_attempts.is_some_and(|m| pass >= m) || green && max_attempts.is_some() {
                    break;
                }
                tokio::time::sleep(Duration::from_secs(interval)).await;
            }
            checker.close().await;
        });
        board
    }

    pub fn snapshot(&self) -> Snapshot {
        self.state.read().map(|s| s.clone()).unwrap_or_default()
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.tx.subscribe()
    }
}

/// The automation freeze, if one holds: its reason and who set it.
fn freeze_state() -> Option<String> {
    crate::safety::freeze::current().map(|f| format!("{} (by {}, since {})", f.reason, f.by, f.since))
}
