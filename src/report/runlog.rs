//! The run log: every run that is not a dry-run appends its events, one JSON
//! object a line, written as they happen and synced to disk right behind them, to
//! `<state dir>/runs/<time>-<run id>.jsonl`. A run that dies mid-way leaves a
//! log that says exactly which steps ran.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};

use super::Event;

/// `$RECOVER_STATE_DIR`, else `$XDG_STATE_HOME/recover`, else `~/.local/state/recover`.
pub fn state_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("RECOVER_STATE_DIR") {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_STATE_HOME") {
        return PathBuf::from(d).join("recover");
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/tmp"));
    home.join(".local/state/recover")
}

pub struct RunLog {
    pub path: PathBuf,
    file: File,
    syncer: Option<Syncer>,
}

/// Makes the log durable off the hot path: every event is written (one `write`, so it
/// survives the process being killed) by the caller, and this thread runs `fdatasync`
/// whenever something new was written. Under load one sync covers many events (a group
/// commit), and no host's task waits on the disk: at 200 hosts a sync per event, on the
/// caller, serialised every event of the run behind the disk (BENCHMARKS.md).
struct Syncer {
    state: Arc<(Mutex<SyncState>, Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[derive(Default)]
struct SyncState {
    dirty: bool,
    closing: bool,
}

impl Syncer {
    fn start(file: File) -> Syncer {
        let state: Arc<(Mutex<SyncState>, Condvar)> = Arc::default();
        let shared = state.clone();
        let thread = std::thread::Builder::new()
            .name("runlog-sync".into())
            .spawn(move || {
                let (lock, cv) = &*shared;
                let Ok(mut st) = lock.lock() else { return };
                loop {
                    if st.dirty {
                        st.dirty = false;
                        drop(st);
                        let _ = file.sync_data();
                        st = match lock.lock() {
                            Ok(g) => g,
                            Err(_) => return,
                        };
                    } else if st.closing {
                        return;
                    } else {
                        st = match cv.wait(st) {
                            Ok(g) => g,
                            Err(_) => return,
                        };
                    }
                }
            })
            .ok();
        Syncer { state, thread }
    }

    fn written(&self) {
        let (lock, cv) = &*self.state;
        if let Ok(mut st) = lock.lock() {
            st.dirty = true;
            cv.notify_one();
        }
    }
}

impl Drop for Syncer {
    /// The last events are synced before the log is let go.
    fn drop(&mut self) {
        {
            let (lock, cv) = &*self.state;
            if let Ok(mut st) = lock.lock() {
                st.closing = true;
                cv.notify_one();
            }
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl RunLog {
    /// Creates the log file for `run_id`.
    pub fn create(run_id: &str) -> std::io::Result<RunLog> {
        let dir = state_dir().join("runs");
        std::fs::create_dir_all(&dir)?;
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
        let path = dir.join(format!("{stamp}-{run_id}.jsonl"));
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let syncer = file.try_clone().ok().map(Syncer::start);
        Ok(RunLog { path, file, syncer })
    }

    /// Appends one event as one line, in one `write`; the sync follows on its own thread.
    pub fn write(&mut self, event: &Event) {
        let mut v = serde_json::to_value(event).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.insert("at".into(), serde_json::Value::String(chrono::Utc::now().to_rfc3339()));
        }
        if let Ok(mut line) = serde_json::to_string(&v) {
            line.push('\n');
            let _ = self.file.write_all(line.as_bytes());
            match &self.syncer {
                Some(s) => s.written(),
                None => {
                    let _ = self.file.sync_data();
                }
            }
        }
    }
}

/// Every run log, oldest first.
pub fn run_logs() -> Vec<PathBuf> {
    let mut logs: Vec<PathBuf> = std::fs::read_dir(state_dir().join("runs"))
        .map(|rd| rd.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "jsonl")).collect())
        .unwrap_or_default();
    logs.sort();
    logs
}

/// The events of one run log (lines that do not parse are skipped: a run killed mid-write).
pub fn read_events(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path).unwrap_or_default().lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

/// Every verified backup any recorded run took, oldest first.
pub fn backup_records() -> Vec<crate::safety::backup::BackupRecord> {
    let mut out = Vec::new();
    for log in run_logs() {
        for e in read_events(&log) {
            if e["event"] == "backup" {
                if let Ok(r) = serde_json::from_value(e["backup"].clone()) {
                    out.push(r);
                }
            }
        }
    }
    out
}
