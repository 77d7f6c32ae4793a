//! The run log: every run that is not a dry-run appends its events, one JSON
//! object a line, written as they happen and synced to disk right behind them, to
//! `<state dir>/runs/<time>-<run id>.jsonl`. A run that dies mid-way leaves a
//! log that says exactly which steps ran.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};

use super::Event;

/// `$RECOVER_STATE_DIR`, else `$XDG_STATE_HOME/recover`, else `~/.local/state/recover`,
/// where `~` is `$HOME` if it is an absolute path, else the user's home in /etc/passwd.
/// With no home at all it is `/nonexistent`: [`checked_state_dir`] then refuses it
/// rather than fall back to a folder others can write.
pub fn state_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("RECOVER_STATE_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_STATE_HOME").map(PathBuf::from).filter(|d| d.is_absolute()) {
        return d.join("recover");
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).filter(|h| h.is_absolute()).or_else(passwd_home).unwrap_or_else(|| PathBuf::from("/nonexistent"));
    home.join(".local/state/recover")
}

/// This process's home folder from /etc/passwd.
fn passwd_home() -> Option<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self").ok()?.uid();
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() > 5 && f[2] == uid.to_string() && f[5].starts_with('/')).then(|| PathBuf::from(f[5]))
    })
}

/// The state folder, made (mode 0700) if missing, and refused when it is not this user's
/// own or others can write it: run logs are the audit trail and hold what ran.
pub fn checked_state_dir() -> std::io::Result<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    let dir = state_dir();
    let bad = |msg: String| std::io::Error::new(std::io::ErrorKind::PermissionDenied, msg);
    if !dir.is_dir() {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir).map_err(|e| bad(format!("cannot create the state folder {}: {e}", dir.display())))?;
    }
    let meta = std::fs::metadata(&dir)?;
    let me = std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(u32::MAX);
    if meta.uid() != me {
        return Err(bad(format!("the state folder {} belongs to uid {}, not to this user (uid {me}); set RECOVER_STATE_DIR to a folder of your own", dir.display(), meta.uid())));
    }
    if meta.permissions().mode() & 0o022 != 0 {
        return Err(bad(format!("the state folder {} can be written by others (mode {:o}); run `chmod 700 {}`", dir.display(), meta.permissions().mode() & 0o7777, dir.display())));
    }
    Ok(dir)
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
    /// The folder is 0700 and the file 0600: a run log is the audit trail, readable by its operator only.
    pub fn create(run_id: &str) -> std::io::Result<RunLog> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        let dir = checked_state_dir()?.join("runs");
        if !dir.is_dir() {
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir)?;
        }
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
        let path = dir.join(format!("{stamp}-{run_id}.jsonl"));
        let file = OpenOptions::new().create(true).append(true).mode(0o600).open(&path)?;
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
    read_events_counted(path).0
}

/// The events of one run log and how many lines did not parse.
pub fn read_events_counted(path: &std::path::Path) -> (Vec<serde_json::Value>, usize) {
    let text = std::fs::read(path).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
    let mut bad = 0;
    let events = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| match serde_json::from_str::<serde_json::Value>(l) {
            Ok(v) if v.is_object() => Some(v),
            _ => {
                bad += 1;
                None
            }
        })
        .collect();
    (events, bad)
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
