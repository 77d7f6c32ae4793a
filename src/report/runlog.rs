//! The run log: every run that is not a dry-run appends its events, one JSON
//! object a line, written as they happen and synced to disk right behind them, to
//! `<state dir>/runs/<time>-<run id>.jsonl`. A run that dies mid-way leaves a
//! log that says exactly which steps ran.
//!
//! The logs are a hash chain: every line carries `prev`, the sha256 of the line before it,
//! and a run's first line the sha256 and number of the last line of the newest earlier run on
//! this control machine, so `recover history --verify` finds an edited, removed or inserted
//! line (or a removed run) and names the first that does not fit.
//!
//! The chain's head (the newest log, its line count, its last line's sha256, and the first log
//! that was chained) is kept apart from the logs, in `head.json` of the state folder and in the
//! shared folder where another operator can compare it. A new run chains to the head, not to
//! whatever the newest file holds now: a log cut short or removed before the next run breaks
//! the chain instead of being laundered by it, and every log since the first chained one must
//! carry the chain.

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
    /// The sha256 of the last line written (or, before the first, of the last run's last line).
    prev: Option<String>,
    /// The earlier run log the first line chains to, and the line (1-based): a run still
    /// writing when this one started may grow after it.
    prev_log: Option<(String, usize)>,
    first: bool,
    /// Lines written, this log's file name, and the first chained log (for the head).
    lines: usize,
    name: String,
    since: String,
}

/// The chain's head (see the module doc).
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
pub struct Head {
    pub log: String,
    pub lines: usize,
    pub digest: String,
    /// The first run log that carried the chain: every later one must.
    pub since: String,
}

fn head_paths() -> Vec<PathBuf> {
    let mut v = vec![state_dir().join("head.json")];
    let uid = unsafe { libc::geteuid() };
    v.push(crate::safety::freeze::shared_dir().join("heads").join(format!("uid-{uid}.json")));
    v
}

/// The head as this user's state folder keeps it.
pub fn read_head() -> Option<Head> {
    std::fs::read_to_string(state_dir().join("head.json")).ok().and_then(|t| serde_json::from_str(&t).ok())
}

/// The head as the shared folder keeps it (for another operator to compare).
pub fn read_shared_head() -> Option<Head> {
    head_paths().get(1).and_then(|p| std::fs::read_to_string(p).ok()).and_then(|t| serde_json::from_str(&t).ok())
}

fn write_head(h: &Head) {
    use std::os::unix::fs::OpenOptionsExt;
    let text = serde_json::to_string(h).unwrap_or_default();
    for (i, p) in head_paths().into_iter().enumerate() {
        if i == 1 && crate::safety::freeze::shared_subdir("heads").is_err() {
            continue;
        }
        let tmp = p.with_extension(format!("json.tmp-{}", std::process::id()));
        let mode = if i == 0 { 0o600 } else { 0o644 };
        let ok = OpenOptions::new().write(true).create(true).truncate(true).mode(mode).open(&tmp).and_then(|mut f| f.write_all(text.as_bytes()));
        if ok.is_ok() {
            let _ = std::fs::rename(&tmp, &p);
        } else {
            let _ = std::fs::remove_file(&tmp);
        }
    }
}

/// What a new run's first line chains to: the head's log and line (or, where that log grew
/// since (a run killed before it could record its head), its last line now, if the line the
/// head names is still as it was), and the first chained log.
fn link_to_head(dir: &std::path::Path, this: &std::path::Path) -> (Option<String>, Option<(String, usize)>, Option<String>) {
    let logs: Vec<PathBuf> = run_logs_in(dir).into_iter().filter(|p| p != this).collect();
    let Some(head) = read_head() else {
        // No head yet: the newest log's last line (logs from before heads were kept).
        let since = logs.iter().find(|l| first_line_chained(l)).and_then(|l| l.file_name()).map(|n| n.to_string_lossy().into_owned());
        return match logs.last() {
            Some(last) => {
                let bytes = std::fs::read(last).unwrap_or_default();
                let lines = lines_of(&bytes);
                match lines.last() {
                    Some(l) => (Some(line_digest(l)), last.file_name().map(|n| (n.to_string_lossy().into_owned(), lines.len())), since),
                    None => (None, None, since),
                }
            }
            None => (None, None, since),
        };
    };
    // Logs newer than the head's (runs that were killed before recording theirs) come first.
    let newest = logs.last().and_then(|l| l.file_name()).map(|n| n.to_string_lossy().into_owned());
    if let Some(n) = newest.filter(|n| *n > head.log) {
        let bytes = std::fs::read(dir.join(&n)).unwrap_or_default();
        let lines = lines_of(&bytes);
        if let Some(l) = lines.last() {
            return (Some(line_digest(l)), Some((n, lines.len())), Some(head.since));
        }
    }
    let bytes = std::fs::read(dir.join(&head.log)).unwrap_or_default();
    let lines = lines_of(&bytes);
    if lines.len() > head.lines && lines.get(head.lines - 1).map(|l| line_digest(l)).as_deref() == Some(head.digest.as_str()) {
        let last = lines.last().map(|l| line_digest(l));
        return (last, Some((head.log.clone(), lines.len())), Some(head.since));
    }
    (Some(head.digest.clone()), Some((head.log.clone(), head.lines)), Some(head.since))
}

fn first_line_chained(log: &std::path::Path) -> bool {
    let bytes = std::fs::read(log).unwrap_or_default();
    lines_of(&bytes).first().and_then(|l| serde_json::from_slice::<serde_json::Value>(l).ok()).is_some_and(|v| v.get("prev").is_some())
}

/// The sha256 (hex) of one log line, without its newline.
pub fn line_digest(line: &[u8]) -> String {
    use sha2::Digest;
    format!("{:x}", sha2::Sha256::digest(line))
}

/// A log file's lines (the text after the last newline counts too: a run cut mid-write).
fn lines_of(bytes: &[u8]) -> Vec<&[u8]> {
    let mut v: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
    if v.last().is_some_and(|l| l.is_empty()) {
        v.pop();
    }
    v
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

impl Drop for RunLog {
    /// The head moves to this log's last line.
    fn drop(&mut self) {
        self.record_head();
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
        // Microseconds: runs started in the same second sort (and chain) in the order they began.
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.6fZ");
        let path = dir.join(format!("{stamp}-{run_id}.jsonl"));
        // The chain's head: this run's first line chains to it (see the module doc).
        let (prev, prev_log, since) = link_to_head(&dir, &path);
        let file = OpenOptions::new().create(true).append(true).mode(0o600).open(&path)?;
        let syncer = file.try_clone().ok().map(Syncer::start);
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        Ok(RunLog { path, file, syncer, prev, prev_log, first: true, lines: 0, name, since: since.unwrap_or_default() })
    }

    /// Records this log as the chain's head: its line count and last line's digest.
    fn record_head(&self) {
        if let Some(d) = &self.prev {
            write_head(&Head { log: self.name.clone(), lines: self.lines, digest: d.clone(), since: if self.since.is_empty() { self.name.clone() } else { self.since.clone() } });
        }
    }

    /// Appends one event as one line, in one `write`; the sync follows on its own thread.
    pub fn write(&mut self, event: &Event) {
        let mut v = serde_json::to_value(event).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.insert("at".into(), serde_json::Value::String(chrono::Utc::now().to_rfc3339()));
            o.insert("prev".into(), self.prev.clone().map(serde_json::Value::String).unwrap_or(serde_json::Value::Null));
            if self.first {
                let (log, line) = self.prev_log.clone().map(|(l, n)| (serde_json::json!(l), serde_json::json!(n))).unwrap_or_default();
                o.insert("prev_log".into(), log);
                o.insert("prev_line".into(), line);
            }
        }
        if let Ok(mut line) = serde_json::to_string(&v) {
            self.prev = Some(line_digest(line.as_bytes()));
            let was_first = self.first;
            self.first = false;
            self.lines += 1;
            line.push('\n');
            let _ = self.file.write_all(line.as_bytes());
            if was_first {
                // The head moves to this run at once: a run killed later still anchors its log.
                self.record_head();
            }
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
    run_logs_in(&state_dir().join("runs"))
}

fn run_logs_in(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut logs: Vec<PathBuf> = std::fs::read_dir(dir)
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

/// What `history --verify` found.
pub struct ChainReport {
    pub logs: usize,
    pub lines: usize,
    /// Logs written before the chain existed (no `prev` on their lines).
    pub unchained: Vec<PathBuf>,
    /// The first line that does not fit: the log, its 1-based line number, why.
    pub broken: Option<(PathBuf, usize, String)>,
}

/// Checks the hash chain of every run log, oldest first, and the head kept apart from them.
pub fn verify_chain() -> ChainReport {
    let logs = run_logs();
    let mut report = ChainReport { logs: logs.len(), lines: 0, unchained: Vec::new(), broken: None };
    let head = read_head();
    // Each earlier log's line digests, by file name: a run's first line must name one of them.
    let mut digests: std::collections::HashMap<String, Vec<String>> = std::collections::HashMap::new();
    let mut seen_chained = false;
    for log in &logs {
        let name = log.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let bytes = std::fs::read(log).unwrap_or_default();
        let lines = lines_of(&bytes);
        report.lines += lines.len();
        let mut prev: Option<String> = None;
        let mut chained = false;
        for (i, line) in lines.iter().enumerate() {
            let v: serde_json::Value = match serde_json::from_slice(line) {
                Ok(v) => v,
                Err(_) if i + 1 == lines.len() && chained => {
                    // A run killed mid-write: its last line is cut; nothing follows it.
                    break;
                }
                Err(e) => {
                    report.broken.get_or_insert((log.clone(), i + 1, format!("not a JSON event ({e})")));
                    break;
                }
            };
            let Some(got) = v.get("prev") else {
                if i == 0 {
                    // Only a log older than the chain may lack it.
                    let after_start = seen_chained || head.as_ref().is_some_and(|h| name >= h.since);
                    if after_start {
                        report.broken.get_or_insert((log.clone(), 1, "it carries no `prev`, and run logs have been chained since before it: its chain was stripped".into()));
                    } else {
                        report.unchained.push(log.clone());
                    }
                    break;
                }
                report.broken.get_or_insert((log.clone(), i + 1, "it carries no `prev`: a line was inserted".into()));
                break;
            };
            chained = true;
            seen_chained = true;
            let got = got.as_str().map(str::to_string);
            if i == 0 {
                let named = v.get("prev_log").and_then(|p| p.as_str()).map(str::to_string);
                let at = v.get("prev_line").and_then(|n| n.as_u64()).unwrap_or(0) as usize;
                let ok = match (&named, &got) {
                    // No earlier run to chain to: only the oldest log may say so.
                    (None, None) => digests.is_empty(),
                    (Some(n), Some(d)) => at > 0 && digests.get(n).and_then(|ds| ds.get(at - 1)) == Some(d),
                    _ => false,
                };
                if !ok {
                    let why = match &named {
                        Some(n) if !digests.contains_key(n) => format!("it chains to the run log {n}, which is gone"),
                        Some(n) if digests.get(n).is_some_and(|ds| ds.len() < at) => format!("it chains to line {at} of {n}, which now has {} line(s): that log was cut short", digests.get(n).map(Vec::len).unwrap_or(0)),
                        Some(n) => format!("it chains to line {at} of {n}, which has changed since"),
                        None if got.is_none() => "it names no earlier run, but earlier run logs are there: a line was replaced".into(),
                        None => "it names no earlier run, but its `prev` is set".into(),
                    };
                    report.broken.get_or_insert((log.clone(), 1, why));
                    break;
                }
            } else if got != prev {
                report.broken.get_or_insert((log.clone(), i + 1, format!("its `prev` is not the sha256 of line {}: line {} or this one was edited, or lines were removed or inserted between them", i, i)));
                break;
            }
            prev = Some(line_digest(line));
        }
        digests.insert(name, lines.iter().map(|l| line_digest(l)).collect());
        if report.broken.is_some() {
            break;
        }
    }
    // The head (this user's, and the copy in the shared folder) must still be in the logs: the
    // newest run's log cut short or removed since shows here, before any next run.
    if report.broken.is_none() {
        let dir = state_dir().join("runs");
        for (h, whose) in [(head, "the chain's head (head.json)"), (read_shared_head(), "the chain's head kept in the shared folder")] {
            let Some(h) = h else { continue };
            let path = dir.join(&h.log);
            match digests.get(&h.log) {
                None => report.broken = Some((path, h.lines, format!("{whose} names this run log, which is gone"))),
                Some(ds) if ds.len() < h.lines => report.broken = Some((path, ds.len(), format!("{whose} says this log has {} line(s); it has {}: it was cut short", h.lines, ds.len()))),
                Some(ds) if ds.get(h.lines.saturating_sub(1)) != Some(&h.digest) => report.broken = Some((path, h.lines, format!("{whose} holds another sha256 for this line: it was changed"))),
                _ => {}
            }
            if report.broken.is_some() {
                break;
            }
        }
    }
    report
}
