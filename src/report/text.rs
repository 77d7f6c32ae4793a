//! The terminal view: one line per task per host, colored by status, diffs
//! when asked, spinners on a TTY, plain lines otherwise.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use console::{style, Style};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{Event, ReportOptions, Status};

pub struct Text {
    opts: ReportOptions,
    multi: Option<MultiProgress>,
    bars: Mutex<HashMap<String, ProgressBar>>,
    /// Stdout went away (a write failed).
    gone: std::sync::atomic::AtomicBool,
}

impl Text {
    pub fn new(opts: ReportOptions) -> Text {
        let tty = console::Term::stdout().is_term();
        let multi = tty.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stdout()));
        console::set_colors_enabled(opts.color && tty);
        Text { opts, multi, bars: Mutex::new(HashMap::new()), gone: Default::default() }
    }

    fn print(&self, line: &str) {
        let ok = match &self.multi {
            Some(m) => m.println(line).is_ok(),
            None => super::stdout_line(line),
        };
        if !ok {
            self.gone.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    pub fn busy(&self, host: &str, task: &str) {
        let Some(m) = &self.multi else { return };
        let Ok(mut bars) = self.bars.lock() else { return };
        let bar = bars.entry(host.to_string()).or_insert_with(|| {
            let b = m.add(ProgressBar::new_spinner());
            b.set_style(ProgressStyle::with_template("  {spinner} {prefix:>6}  {msg} {elapsed:.dim}").unwrap_or_else(|_| ProgressStyle::default_spinner()));
            b.enable_steady_tick(Duration::from_millis(120));
            b.set_prefix(host.to_string());
            b
        });
        bar.set_message(task.to_string());
        bar.reset_elapsed();
    }

    /// A bytes-and-rate bar (TTY only).
    pub fn bytes_bar(&self, host: &str, msg: &str, total: u64) -> Option<ProgressBar> {
        let m = self.multi.as_ref()?;
        let b = m.add(ProgressBar::new(total));
        b.set_style(
            ProgressStyle::with_template("  {prefix:>6}  {msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        b.set_prefix(host.to_string());
        b.set_message(msg.to_string());
        Some(b)
    }

    pub fn pause(&self, f: &mut dyn FnMut()) {
        match &self.multi {
            Some(m) => m.suspend(f),
            None => f(),
        }
    }

    pub fn idle(&self, host: &str) {
        if let Ok(mut bars) = self.bars.lock() {
            if let Some(b) = bars.remove(host) {
                b.finish_and_clear();
            }
        }
    }

    /// Prints an event; false when stdout is gone.
    pub fn show(&self, event: &Event) -> bool {
        // Everything in an event may come from a host, a file or a user: no control character
        // reaches the terminal as it is.
        self.show_event(&super::escape::clean_event(event));
        !self.gone.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn show_event(&self, event: &Event) {
        match event {
            Event::RunStart { .. } | Event::TaskStart { .. } => {}
            Event::PlayStart { play, hosts, check } => {
                let mode = if *check { " (dry-run: nothing will be changed)" } else { "" };
                self.print(&format!("\n{} {}  hosts: {}{}", style("PLAY").bold(), style(play).bold(), hosts.join(", "), style(mode).yellow()));
            }
            Event::NoHosts { play, pattern } => {
                self.print(&format!("\n{} {play}: no hosts match '{pattern}' (skipped)", style("PLAY").bold()));
            }
            Event::Task { host, task, status, msg, changes, diff, note, item, output, ignored, check, duration_ms, .. } => {
                let (label, st) = match label(*status, *check, *ignored) {
                    // A command a dry-run skips as ansible-core's check mode does: it would run.
                    (_, _) if *status == Status::Skipped && *check && !changes.is_empty() => ("would run".to_string(), Style::new().yellow()),
                    l => l,
                };
                let item = item.as_ref().map(|i| format!(" [item={}]", short(i))).unwrap_or_default();
                let secs = if *duration_ms >= 1000 { format!("  {}", style(format!("({:.1}s)", *duration_ms as f64 / 1000.0)).dim()) } else { String::new() };
                let mut line = format!("  {}  {:>6}  {task}{item}{secs}", st.apply_to(format!("{label:<11}")), host);
                if let Some(m) = msg.as_ref().filter(|_| matches!(status, Status::Failed | Status::Unreachable | Status::Refused)) {
                    line.push_str(&format!("\n{}", indent(&st.apply_to(m).to_string(), 21)));
                }
                self.print(&line);
                let show_detail = *check || self.opts.verbosity > 0;
                if show_detail {
                    for c in changes {
                        self.print(&indent(&format!("- {c}"), 21));
                    }
                }
                if let Some(n) = note.as_ref().filter(|_| *check || self.opts.verbosity > 0) {
                    self.print(&indent(&style(n).dim().to_string(), 21));
                }
                if let (Some(d), true) = (diff, self.opts.diff || *check) {
                    self.print(&indent(&color_diff(d), 21));
                }
                if let Some(o) = output {
                    let text = match o {
                        serde_json::Value::String(s) => s.clone(),
                        other => serde_json::to_string_pretty(other).unwrap_or_default(),
                    };
                    self.print(&indent(&text, 21));
                }
            }
            Event::Preview { host, task, tier, reason, commands, diff, backups, preserves } => {
                let head = format!("  {}  {host:>6}  {task}  [{tier}]", style("DESTRUCTIVE").magenta().bold());
                let mut lines = vec![head, indent(&reason.to_string(), 21)];
                for c in commands {
                    lines.push(indent(&format!("will run: {c}"), 21));
                }
                for b in backups {
                    lines.push(indent(
                        &format!(
                            "backup: {} ({}, sha256 {}) verified",
                            b["archive"].as_str().unwrap_or("?"),
                            crate::safety::backup::human(b["bytes"].as_u64().unwrap_or(0)),
                            b["sha256"].as_str().unwrap_or("?")
                        ),
                        21,
                    ));
                }
                if let Some(p) = preserves {
                    lines.push(indent(&format!("preserves the original itself: {p}"), 21));
                }
                if let Some(d) = diff {
                    lines.push(indent(&color_diff(d), 21));
                }
                self.print(&lines.join("\n"));
            }
            Event::Approval { host, task, decision, how, .. } => {
                let s = if decision == "run" { Style::new().green() } else { Style::new().red() };
                self.print(&indent(&s.apply_to(format!("{decision}: {how}  ({host}: {task})")).to_string(), 21));
            }
            Event::Backup { .. } => {}
            Event::Interrupt { message, .. } => self.print(&format!("\n  {}", style(message).yellow().bold())),
            Event::ApprovalRequest { host, task, tier, flag, .. } => {
                self.print(&indent(&style(format!("approval requested: {task} on {host} ({tier}); an operator can run it with {flag}")).yellow().to_string(), 21));
            }
            Event::LockBroken { host, previous, why } => {
                self.print(&format!("  {}  {host:>6}  took over the lock held by {previous} ({why})", style("LOCK").yellow().bold()));
            }
            Event::PlanSaved { file, plan_digest, hosts, changes } => self.print(&format!(
                "\n{} {file} (sha256 {}): {changes} step(s) to run on {} host(s); next: recover plan show {file}, recover approve {file}",
                style("plan saved:").green().bold(),
                crate::digest::short(plan_digest),
                hosts.len()
            )),
            Event::PlanApproval { approver, expires, .. } => self.print(&format!("  approved by {approver} until {expires}")),
            Event::PlanApply { file, plan_digest, approvals } => self.print(&format!("\n{} {file} (sha256 {}), approved by {}", style("applying the saved plan").bold(), crate::digest::short(plan_digest), approvals.join(", "))),
            Event::PlanStale { host, differences } => {
                self.print(&format!("\n{} {host}: refused, stale plan (nothing was run there):", style("STALE").red().bold()));
                for d in differences {
                    self.print(&format!("    {d}"));
                }
            }
            Event::Rescued { host, task } => {
                self.print(&indent(&style(format!("rescued: '{task}' failed on {host}; its block's rescue runs")).yellow().to_string(), 21));
            }
            Event::Recap { hosts, exit_code } => {
                self.print(&format!("\n{}", style("RECAP").bold()));
                self.print(&format!("  {:>6}  {:>4} {:>8} {:>7} {:>8} {:>12} {:>8} {:>8} {:>8}", "host", "ok", "changed", "failed", "skipped", "unreachable", "rescued", "ignored", "refused"));
                for (h, c) in hosts {
                    let row = format!("  {h:>6}  {:>4} {:>8} {:>7} {:>8} {:>12} {:>8} {:>8} {:>8}", c.ok, c.changed, c.failed, c.skipped, c.unreachable, c.rescued, c.ignored, c.refused);
                    let s = if c.unreachable > 0 || c.failed > 0 || c.refused > 0 { Style::new().red() } else if c.changed > 0 { Style::new().yellow() } else { Style::new().green() };
                    self.print(&s.apply_to(row).to_string());
                }
                let verdict = match exit_code {
                    0 => style("all ok".to_string()).green(),
                    2 => style("a step failed (exit 2)".to_string()).red(),
                    3 => style("a host was unreachable (exit 3)".to_string()).red(),
                    130 => style("interrupted: no new step started after the interrupt (exit 130); the run log says what ran".to_string()).yellow(),
                    4 => style("refused by safety policy (exit 4)".to_string()).red(),
                    n => style(format!("exit {n}")).red(),
                };
                self.print(&format!("  {verdict}"));
            }
        }
    }
}

fn label(status: Status, check: bool, ignored: bool) -> (String, Style) {
    match status {
        Status::Ok => ("ok".into(), Style::new().green()),
        Status::Changed if check => ("would change".into(), Style::new().yellow()),
        Status::Changed => ("changed".into(), Style::new().yellow()),
        Status::Failed if ignored => ("failed (ignored)".into(), Style::new().red()),
        Status::Failed => ("FAILED".into(), Style::new().red().bold()),
        Status::Skipped => ("skipped".into(), Style::new().cyan()),
        Status::Unreachable => ("UNREACHABLE".into(), Style::new().red().bold()),
        Status::Refused => ("REFUSED".into(), Style::new().magenta().bold()),
    }
}

fn short(v: &serde_json::Value) -> String {
    let s = match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if s.chars().count() > 60 { format!("{}...", s.chars().take(57).collect::<String>()) } else { s }
}

fn indent(text: &str, n: usize) -> String {
    let pad = " ".repeat(n);
    text.trim_end_matches('\n').lines().map(|l| format!("{pad}{l}")).collect::<Vec<_>>().join("\n")
}

fn color_diff(d: &str) -> String {
    d.lines()
        .map(|l| {
            if l.starts_with('+') {
                style(l).green().to_string()
            } else if l.starts_with('-') {
                style(l).red().to_string()
            } else if l.starts_with("@@") {
                style(l).cyan().to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}
