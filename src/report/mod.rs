//! Events of a run, and where they go: the terminal (a line per task per host,
//! a spinner per busy host on a TTY, a recap table), JSON lines
//! (`--output json`), and the run log (every run that is not a dry-run).

pub mod escape;
pub mod runlog;
mod text;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

pub use escape::{clean, clean_line};
pub use runlog::{backup_records, checked_state_dir, read_events, read_events_counted, run_logs, state_dir, RunLog};

/// How a step ended on a host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Changed,
    Failed,
    Skipped,
    Unreachable,
    /// Not run: safety policy said no (declined, no approval, backup failed). Nothing changed.
    Refused,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Changed => "changed",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
            Status::Unreachable => "unreachable",
            Status::Refused => "refused",
        }
    }
}

/// One thing that happened.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    RunStart { run_id: String, playbook: String, check: bool, operator: String, command: Vec<String> },
    PlayStart { play: String, hosts: Vec<String>, check: bool },
    NoHosts { play: String, pattern: String },
    /// A step is about to reach a host: `history` shows what was in flight when a run died.
    TaskStart { host: String, task: String },
    Task {
        host: String,
        task: String,
        status: Status,
        #[serde(skip_serializing_if = "Option::is_none")]
        msg: Option<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        changes: Vec<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        diff: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        note: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        item: Option<Json>,
        #[serde(skip_serializing_if = "Option::is_none")]
        output: Option<Json>,
        ignored: bool,
        /// Failed after changing something (Ansible's changed=true on a failed result).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        failed_changed: bool,
        check: bool,
        duration_ms: u64,
    },
    /// A destructive step about to be decided: what it runs, its diff, its backup, its tier.
    Preview {
        host: String,
        task: String,
        tier: String,
        reason: String,
        commands: Vec<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        diff: Option<String>,
        backups: Vec<Json>,
        #[serde(skip_serializing_if = "Option::is_none")]
        preserves: Option<String>,
    },
    /// How a destructive step was decided (typed confirmation, --approve, --yes, declined ...).
    Approval { host: String, task: String, tier: String, decision: String, how: String },
    /// A verified backup taken in this run.
    Backup { host: String, task: String, backup: Json },
    /// An approval request from an --automation run (the step did not run).
    ApprovalRequest { host: String, task: String, tier: String, playbook: String, reason: String, flag: String },
    /// The operator pressed Ctrl-C: `abort` false lets steps in flight finish, true stops at once.
    Interrupt { abort: bool, message: String },
    /// A host lock taken over: with --break-lock, or because its run (on this machine) is gone.
    LockBroken { host: String, previous: String, why: String },
    /// A failure in a block with `rescue:`: the rescue runs, and the recap counts it rescued.
    Rescued { host: String, task: String },
    Recap { hosts: BTreeMap<String, Counts>, exit_code: i32 },
    /// A dry-run saved its plan (`--save-plan`).
    PlanSaved { file: String, plan_digest: String, hosts: Vec<String>, changes: usize },
    /// `recover approve`: who approved which plan, until when.
    PlanApproval { file: String, plan_digest: String, approver: String, expires: String, approval_digest: String },
    /// `recover apply`: the plan this run is held to, and its approvals.
    PlanApply { file: String, plan_digest: String, approvals: Vec<String> },
    /// `recover apply` refused a host whose state is no longer the plan's.
    PlanStale { host: String, differences: Vec<String> },
}

/// Per-host totals for the recap.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Counts {
    pub ok: u32,
    pub changed: u32,
    pub failed: u32,
    pub skipped: u32,
    pub unreachable: u32,
    pub ignored: u32,
    #[serde(default)]
    pub rescued: u32,
    pub refused: u32,
}

/// Output settings.
#[derive(Clone, Debug)]
pub struct ReportOptions {
    pub json: bool,
    pub color: bool,
    pub diff: bool,
    pub verbosity: u8,
}

/// Where events go. Safe to share between host tasks.
pub struct Reporter {
    opts: ReportOptions,
    text: Option<text::Text>,
    log: Mutex<Option<RunLog>>,
    counts: Mutex<BTreeMap<String, Counts>>,
    /// Approvals and backups, for the logbook.
    audit: Mutex<Vec<Event>>,
    /// Set when stdout went away (`recover play ... | head`): the run stops as after one Ctrl-C.
    stop_flag: Mutex<Option<Arc<AtomicBool>>>,
    stdout_gone: AtomicBool,
    /// `--save-plan`: every event, masked, for the plan (`plan show` replays them).
    capture: Mutex<Option<Vec<Json>>>,
}

/// Writes one line to stdout; false when it is gone (the reader closed the pipe).
pub fn stdout_line(line: &str) -> bool {
    use std::io::Write;
    writeln!(std::io::stdout().lock(), "{line}").is_ok()
}

pub use crate::secrets::{is_secret_name, MASK};

/// Replaces every secret (see [`crate::secrets`]) inside the event's text.
fn mask(event: &Event) -> Event {
    if !crate::secrets::any() {
        return event.clone();
    }
    let mut v = serde_json::to_value(event).unwrap_or_default();
    crate::secrets::mask_json(&mut v);
    match serde_json::from_value(v) {
        Ok(e) => e,
        // Never fall back to the unmasked event: say that something was hidden instead.
        Err(_) => Event::Interrupt { abort: false, message: format!("(an event was hidden: it holds a secret and could not be masked: {})", MASK) },
    }
}

impl Reporter {
    pub fn new(opts: ReportOptions) -> Reporter {
        let text = (!opts.json).then(|| text::Text::new(opts.clone()));
        Reporter {
            opts,
            text,
            log: Mutex::new(None),
            counts: Mutex::new(BTreeMap::new()),
            audit: Mutex::new(Vec::new()),
            stop_flag: Mutex::new(None),
            stdout_gone: AtomicBool::new(false),
            capture: Mutex::new(None),
        }
    }

    /// The flag that stops new steps (the one Ctrl-C sets): set too if stdout goes away.
    pub fn stop_on_closed_stdout(&self, flag: Arc<AtomicBool>) {
        if let Ok(mut f) = self.stop_flag.lock() {
            *f = Some(flag);
        }
    }

    /// Stdout went away mid-run: nobody sees what runs next, so nothing new starts. Logged.
    fn lost_stdout(&self) {
        if self.stdout_gone.swap(true, Ordering::SeqCst) {
            return;
        }
        if let Some(flag) = self.stop_flag.lock().ok().and_then(|f| f.clone()) {
            flag.store(true, Ordering::SeqCst);
        }
        let event = Event::Interrupt { abort: false, message: "stdout was closed (its reader went away): finishing the steps in flight; no new step starts".into() };
        if let Ok(mut log) = self.log.lock() {
            if let Some(l) = log.as_mut() {
                l.write(&event);
            }
        }
        if let Ok(mut a) = self.audit.lock() {
            a.push(event);
        }
    }

    /// Also write every event to this run log.
    pub fn set_log(&self, log: RunLog) {
        if let Ok(mut l) = self.log.lock() {
            *l = Some(log);
        }
    }

    /// The run log's path, when there is one.
    pub fn log_path(&self) -> Option<std::path::PathBuf> {
        self.log.lock().ok()?.as_ref().map(|l| l.path.clone())
    }

    /// Never show these values (terminal, JSON, run log, logbook, saved plans). Short values
    /// (under 4 characters) are ignored.
    pub fn add_secrets<I: IntoIterator<Item = String>>(&self, values: I) {
        crate::secrets::add(values);
    }

    fn count(&self, host: &str, status: Status, ignored: bool, failed_changed: bool) {
        if let Ok(mut c) = self.counts.lock() {
            let e = c.entry(host.to_string()).or_default();
            // As Ansible's recap: a failure counts as a change only when it is ignored.
            if status == Status::Failed && failed_changed && ignored {
                e.changed += 1;
            }
            // As Ansible's recap: `ok` counts every task that neither failed nor was skipped
            // (a change, an ignored failure too).
            match status {
                Status::Ok => e.ok += 1,
                Status::Changed => {
                    e.ok += 1;
                    e.changed += 1;
                }
                Status::Failed if ignored => {
                    e.ok += 1;
                    e.ignored += 1;
                }
                Status::Failed => e.failed += 1,
                Status::Skipped => e.skipped += 1,
                Status::Unreachable => e.unreachable += 1,
                Status::Refused => e.refused += 1,
            }
        }
    }

    /// Counts a loop task once in the recap, from its items' statuses (`ignored`: the failures
    /// were ignored): failed if one failed, else changed if one changed, else skipped if all
    /// were, else ok. `changed`: an item changed something (a failed one too).
    pub fn count_loop(&self, host: &str, items: &[Status], ignored: bool, changed: bool) {
        let pick = [Status::Unreachable, Status::Refused, Status::Failed].into_iter().find(|s| items.contains(s));
        let status = match pick {
            Some(s) => s,
            None if changed => Status::Changed,
            None if !items.is_empty() && items.iter().all(|s| *s == Status::Skipped) => Status::Skipped,
            None => Status::Ok,
        };
        self.count(host, status, ignored && status == Status::Failed, changed);
    }

    /// Keep every event from now on (see [`Reporter::captured`]).
    pub fn capture(&self) {
        if let Ok(mut c) = self.capture.lock() {
            *c = Some(Vec::new());
        }
    }

    /// The events kept since [`Reporter::capture`], masked as shown.
    pub fn captured(&self) -> Vec<Json> {
        self.capture.lock().ok().and_then(|mut c| c.take()).unwrap_or_default()
    }

    pub fn emit(&self, event: Event) {
        let event = mask(&event);
        if let Ok(mut c) = self.capture.lock() {
            if let Some(v) = c.as_mut() {
                if !matches!(event, Event::RunStart { .. }) {
                    v.push(serde_json::to_value(&event).unwrap_or_default());
                }
            }
        }
        // A loop's items are counted once, for the task, by `count_loop` (as Ansible's recap).
        if let Event::Task { host, status, ignored, failed_changed, item: None, .. } = &event {
            self.count(host, *status, *ignored, *failed_changed);
        }
        if let Event::Rescued { host, .. } = &event {
            if let Ok(mut c) = self.counts.lock() {
                let e = c.entry(host.clone()).or_default();
                e.failed = e.failed.saturating_sub(1);
                e.rescued += 1;
            }
        }
        if matches!(event, Event::Approval { .. } | Event::Backup { .. } | Event::LockBroken { .. } | Event::Interrupt { .. } | Event::PlanApply { .. } | Event::PlanStale { .. }) {
            if let Ok(mut a) = self.audit.lock() {
                a.push(event.clone());
            }
        }
        if let Ok(mut log) = self.log.lock() {
            if let Some(l) = log.as_mut() {
                l.write(&event);
            }
        }
        if self.stdout_gone.load(Ordering::SeqCst) {
            return;
        }
        let shown = if self.opts.json {
            serde_json::to_string(&event).map(|line| stdout_line(&line)).unwrap_or(true)
        } else if let Some(t) = &self.text {
            t.show(&event)
        } else {
            true
        };
        if !shown {
            self.lost_stdout();
        }
    }

    /// A host began a step (spinner on a TTY).
    pub fn busy(&self, host: &str, task: &str) {
        if let Some(t) = &self.text {
            t.busy(host, task);
        }
    }

    /// How much detail was asked for (-v count).
    pub fn verbosity(&self) -> u8 {
        self.opts.verbosity
    }
    /// `--diff` given.
    pub fn diff(&self) -> bool {
        self.opts.diff
    }

    /// A progress bar for a long transfer, on a terminal only.
    pub fn bytes_bar(&self, host: &str, msg: &str, total: u64) -> Option<indicatif::ProgressBar> {
        self.text.as_ref().and_then(|t| t.bytes_bar(host, msg, total))
    }

    /// Runs `f` with the progress display paused (for a prompt).
    pub fn pause(&self, f: &mut dyn FnMut()) {
        match &self.text {
            Some(t) => t.pause(f),
            None => f(),
        }
    }

    /// A host is done with the play.
    pub fn idle(&self, host: &str) {
        if let Some(t) = &self.text {
            t.idle(host);
        }
    }

    /// Make sure every host appears in the recap.
    pub fn add_host(&self, host: &str) {
        if let Ok(mut c) = self.counts.lock() {
            c.entry(host.to_string()).or_default();
        }
    }

    pub fn counts(&self) -> BTreeMap<String, Counts> {
        self.counts.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

/// A markdown summary of a run for the operators' logbook (SOP 13.5).
pub fn logbook_entry(r: &Reporter, run_id: &str, operator: &str, command: &str, playbook: &str, check: bool, code: i32) -> String {
    let (operator, command, playbook) = (clean_line(operator), clean_line(command), clean_line(playbook));
    let mut out = format!(
        "\n## {} recover run {run_id}{}\n\n- operator: {operator}\n- command: `{command}`\n- playbook: {playbook}\n- exit: {code}\n",
        chrono::Utc::now().format("%Y-%m-%d %H:%M:%SZ"),
        if check { " (dry-run)" } else { "" }
    );
    if let Some(p) = r.log_path() {
        out.push_str(&format!("- run log: {}\n", p.display()));
    }
    out.push_str("\n| host | ok | changed | failed | unreachable | refused |\n|---|---|---|---|---|---|\n");
    for (h, c) in r.counts() {
        let h = clean_line(&h);
        out.push_str(&format!("| {h} | {} | {} | {} | {} | {} |\n", c.ok, c.changed, c.failed, c.unreachable, c.refused));
    }
    let audit = r.audit.lock().map(|a| a.clone()).unwrap_or_default();
    for e in audit.iter().map(escape::clean_event) {
        match e {
            Event::Approval { host, task, tier, decision, how } => out.push_str(&format!("- {host}: {task} [{tier}]: {decision} ({how})\n")),
            Event::Backup { host, backup, .. } => out.push_str(&format!(
                "- {host}: backup {} sha256 {}\n",
                backup["archive"].as_str().unwrap_or("?"),
                backup["sha256"].as_str().unwrap_or("?")
            )),
            Event::LockBroken { host, previous, why } => out.push_str(&format!("- {host}: lock of {previous} taken over ({why})\n")),
            Event::PlanApply { file, plan_digest, approvals } => out.push_str(&format!("- applied the saved plan {file} ({}), approved by {}\n", crate::digest::short(&plan_digest), approvals.join(", "))),
            Event::PlanStale { host, differences } => out.push_str(&format!("- {host}: refused, stale plan: {}\n", differences.join("; "))),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_kind_survives_masking() {
        crate::secrets::add(["s3cr3t-value".to_string()]);
        let events = vec![
            Event::Task { host: "h".into(), task: "echo s3cr3t-value".into(), status: Status::Ok, msg: None, changes: vec![], diff: None, note: None, item: None, output: None, ignored: false, failed_changed: false, check: false, duration_ms: 1 },
            Event::Preview { host: "h".into(), task: "t".into(), tier: "BLOCK".into(), reason: "r".into(), commands: vec!["x s3cr3t-value".into()], diff: None, backups: vec![], preserves: None },
            Event::Approval { host: "h".into(), task: "t".into(), tier: "AUTO".into(), decision: "run".into(), how: "s3cr3t-value".into() },
            Event::Recap { hosts: Default::default(), exit_code: 0 },
        ];
        for e in events {
            let masked = serde_json::to_string(&mask(&e)).unwrap();
            assert!(!masked.contains("s3cr3t-value") && !masked.contains("hidden"), "{masked}");
        }

    }
}

