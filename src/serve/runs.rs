//! Runs, backups and saved plans as the pages show them, read from the run logs (as
//! `recover history` reads them). A run is found by its id among the run logs: a URL never
//! names a file. A line that is not a valid event is kept, to be shown as such.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value as Json;

/// The runs page's filters (each a substring, case-insensitive; `date` a prefix such as 2026-12-08).
#[derive(serde::Deserialize, Default, Clone, Debug)]
pub struct Filter {
    pub playbook: Option<String>,
    pub host: Option<String>,
    pub result: Option<String>,
    pub operator: Option<String>,
    pub date: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub id: String,
    pub at: String,
    pub operator: String,
    pub playbook: String,
    pub hosts: Vec<String>,
    /// `ok`, `failed (exit 2)`, `in progress or killed`, `approval`.
    pub result: String,
    pub class: &'static str,
    pub check: bool,
}

/// One step of one host (a loop's items each one).
#[derive(Clone, Debug, Default)]
pub struct Entry {
    pub status: String,
    pub class: &'static str,
    pub item: Option<String>,
    pub msg: Option<String>,
    pub changes: Vec<String>,
    pub diff: Option<String>,
    pub note: Option<String>,
    pub backup: Option<String>,
    pub approval: Option<String>,
}

/// A task's row: one cell per host of the run.
#[derive(Clone, Debug, Default)]
pub struct Row {
    pub play: String,
    pub task: String,
    pub cells: Vec<Vec<Entry>>,
}

#[derive(Clone, Debug, Default)]
pub struct Run {
    pub summary: Summary,
    pub command: String,
    pub hosts: Vec<String>,
    pub rows: Vec<Row>,
    pub backups: Vec<String>,
    pub approvals: Vec<String>,
    /// Host, then ok / changed / failed / skipped / unreachable / rescued / ignored / refused.
    pub recap: Vec<(String, Vec<u64>)>,
    pub finished: bool,
    /// Lines that are not events, as written (cut short).
    pub bad_lines: Vec<(usize, String)>,
    pub chain: String,
}

/// The run log of run `id` (its full id, as the run log's name ends).
pub fn log_of(id: &str) -> Option<PathBuf> {
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    crate::report::run_logs().into_iter().find(|l| l.file_stem().and_then(|n| n.to_str()).is_some_and(|n| n.rsplit('-').next() == Some(id)))
}

/// Each line: the event, or the line as written when it is none.
fn lines(path: &Path) -> Vec<Result<Json, String>> {
    let text = std::fs::read(path).unwrap_or_default();
    String::from_utf8_lossy(&text)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| match serde_json::from_str::<Json>(l) {
            Ok(v) if v.get("event").and_then(Json::as_str).is_some() => Ok(v),
            _ => Err(l.chars().take(300).collect()),
        })
        .collect()
}

fn s(v: &Json, k: &str) -> String {
    v.get(k).and_then(Json::as_str).unwrap_or_default().to_string()
}

fn summary_of(id: String, events: &[Json]) -> Option<Summary> {
    let mut sm = Summary { id, ..Default::default() };
    if let Some(ap) = events.iter().find(|e| e["event"] == "plan_approval") {
        sm.at = s(ap, "at");
        sm.operator = s(ap, "approver");
        sm.playbook = format!("approved plan {}", s(ap, "file").rsplit('/').next().unwrap_or_default());
        sm.result = "approval".into();
        sm.class = "ok";
        return Some(sm);
    }
    let start = events.iter().find(|e| e["event"] == "run_start")?;
    sm.at = s(start, "at");
    sm.operator = s(start, "operator");
    sm.playbook = s(start, "playbook");
    sm.check = start["check"] == Json::Bool(true);
    for e in events.iter().filter(|e| e["event"] == "play_start") {
        for h in e["hosts"].as_array().into_iter().flatten().filter_map(Json::as_str) {
            if !sm.hosts.iter().any(|x| x == h) {
                sm.hosts.push(h.to_string());
            }
        }
    }
    (sm.result, sm.class) = match events.iter().rev().find(|e| e["event"] == "recap").and_then(|r| r["exit_code"].as_i64()) {
        Some(0) => ("ok".into(), "pass"),
        Some(4) => ("refused (exit 4)".into(), "warn"),
        Some(c) => (format!("failed (exit {c})"), "blocked"),
        None => ("in progress, or did not finish".into(), "unknown"),
    };
    Some(sm)
}

fn id_of(log: &Path) -> String {
    log.file_stem().and_then(|n| n.to_str()).and_then(|n| n.rsplit('-').next()).unwrap_or_default().to_string()
}

/// The runs, newest first, that pass the filter.
pub fn list(f: &Filter) -> Vec<Summary> {
    let has = |field: &str, want: &Option<String>| want.as_deref().filter(|w| !w.is_empty()).is_none_or(|w| field.to_lowercase().contains(&w.to_lowercase()));
    let mut out: Vec<Summary> = crate::report::run_logs()
        .iter()
        .filter_map(|log| {
            let events: Vec<Json> = lines(log).into_iter().flatten().collect();
            summary_of(id_of(log), &events)
        })
        .filter(|r| has(&r.playbook, &f.playbook) && has(&r.operator, &f.operator) && has(&r.result, &f.result) && has(&r.hosts.join(" "), &f.host))
        .filter(|r| f.date.as_deref().filter(|d| !d.is_empty()).is_none_or(|d| r.at.starts_with(d)))
        .collect();
    out.reverse();
    out
}

/// Run `id` with the audit trail's check.
pub fn one(id: &str) -> Option<Run> {
    let mut run = read(&log_of(id)?)?;
    run.chain = chain();
    Some(run)
}

/// The run logs' hash chain, checked (every log: once per page, not per live update).
pub fn chain() -> String {
    let chain = crate::report::runlog::verify_chain();
    match &chain.broken {
        Some((p, n, why)) => format!("the chain breaks at {}:{n}: {why}", p.display()),
        None => format!("{} run log(s), {} line(s): the hash chain holds", chain.logs, chain.lines),
    }
}

fn class_of(status: &str) -> &'static str {
    match status {
        "ok" | "would_not_change" => "pass",
        "changed" | "would_change" => "changed",
        "failed" | "unreachable" => "blocked",
        "refused" => "warn",
        _ => "unknown",
    }
}

/// A run's grid from its log (a run in progress as far as it got), without the chain's check.
pub fn read(path: &Path) -> Option<Run> {
    let all = lines(path);
    let mut run = Run { bad_lines: all.iter().enumerate().filter_map(|(i, l)| l.as_ref().err().map(|t| (i + 1, t.clone()))).collect(), ..Default::default() };
    let events: Vec<Json> = all.into_iter().flatten().collect();
    run.summary = summary_of(id_of(path), &events)?;
    run.hosts = run.summary.hosts.clone();
    let mut play = String::new();
    let mut pending: BTreeMap<String, (Option<String>, Option<String>)> = BTreeMap::new();
    for e in &events {
        match e["event"].as_str().unwrap_or_default() {
            "run_start" => run.command = e["command"].as_array().map(|c| c.iter().filter_map(Json::as_str).collect::<Vec<_>>().join(" ")).unwrap_or_default(),
            "play_start" => play = s(e, "play"),
            "backup" => {
                let b = &e["backup"];
                let text = format!("{} sha256 {} ({} entries)", s(b, "archive"), s(b, "sha256"), b["entries"]);
                run.backups.push(format!("{}: {text}", s(e, "host")));
                pending.entry(s(e, "host")).or_default().0 = Some(text);
            }
            "approval" => {
                let text = format!("{} [{}] {}", s(e, "decision"), s(e, "tier"), s(e, "how"));
                run.approvals.push(format!("{}: {} {text}", s(e, "host"), s(e, "task")));
                pending.entry(s(e, "host")).or_default().1 = Some(text);
            }
            "plan_apply" => run.approvals.push(format!("plan {} approved by {}", s(e, "file"), e["approvals"].as_array().map(|a| a.iter().filter_map(Json::as_str).collect::<Vec<_>>().join(", ")).unwrap_or_default())),
            "task" => {
                let host = s(e, "host");
                let Some(col) = run.hosts.iter().position(|h| *h == host).or_else(|| {
                    run.hosts.push(host.clone());
                    Some(run.hosts.len() - 1)
                }) else {
                    continue;
                };
                let task = s(e, "task");
                let status = s(e, "status");
                let (backup, approval) = pending.remove(&host).unwrap_or_default();
                let entry = Entry {
                    class: class_of(&status),
                    status: if e["ignored"] == Json::Bool(true) { format!("{status} (ignored)") } else { status },
                    item: e.get("item").filter(|i| !i.is_null()).map(|i| i.as_str().map(str::to_string).unwrap_or_else(|| i.to_string())),
                    msg: e.get("msg").and_then(Json::as_str).map(str::to_string),
                    changes: e["changes"].as_array().map(|c| c.iter().filter_map(Json::as_str).map(str::to_string).collect()).unwrap_or_default(),
                    diff: e.get("diff").and_then(Json::as_str).map(str::to_string),
                    note: e.get("note").and_then(Json::as_str).map(str::to_string),
                    backup,
                    approval,
                };
                // The row of this task: the last row of this play and name, unless this host has an
                // entry there already for a step that is not a loop's item.
                let row = run.rows.iter().rposition(|r| r.play == play && r.task == task && (entry.item.is_some() || r.cells.get(col).is_none_or(Vec::is_empty)));
                let row = match row {
                    Some(r) => r,
                    None => {
                        run.rows.push(Row { play: play.clone(), task, cells: Vec::new() });
                        run.rows.len() - 1
                    }
                };
                let cells = &mut run.rows[row].cells;
                if cells.len() <= col {
                    cells.resize(col + 1, Vec::new());
                }
                cells[col].push(entry);
            }
            "recap" => {
                run.finished = true;
                if let Some(hosts) = e["hosts"].as_object() {
                    for (h, c) in hosts {
                        let n = |k: &str| c[k].as_u64().unwrap_or(0);
                        run.recap.push((h.clone(), ["ok", "changed", "failed", "skipped", "unreachable", "rescued", "ignored", "refused"].iter().map(|k| n(k)).collect()));
                    }
                }
            }
            _ => {}
        }
    }
    for r in &mut run.rows {
        r.cells.resize(run.hosts.len(), Vec::new());
    }
    Some(run)
}

/// A saved plan the run logs know of, as the plans page shows it.
#[derive(Clone, Debug, Default)]
pub struct SavedPlan {
    pub file: String,
    pub digest: String,
    pub author: String,
    pub created: String,
    pub tier: String,
    /// Host, task, tier, commands and diff of each step that changes a host.
    pub steps: Vec<(String, String, String, Vec<String>, Option<String>)>,
    pub approvals: Vec<String>,
    /// What each host was when the plan was made (`apply` refuses a host that differs): host,
    /// then one line per path and service.
    pub fingerprints: Vec<(String, Vec<String>)>,
    pub needed: usize,
    /// `waiting`, `approved` (enough approvals), `applied`, `expired`, `unreadable: why`.
    pub state: String,
}

/// The plans `--save-plan` wrote (as the shared folder records them), newest first, with their
/// approvals.
pub fn plans() -> Vec<SavedPlan> {
    use crate::plan::approval as approvers;
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    let now = chrono::Utc::now().timestamp();
    {
        for (digest, file) in approvers::saved_plans() {
            if !seen.insert(file.clone()) {
                continue;
            }
            let mut p = SavedPlan { file: file.clone(), digest, ..Default::default() };
            match crate::plan::PlanFile::read(Path::new(&file)) {
                Err(why) => p.state = format!("unreadable: {why}"),
                Ok(pf) => {
                    p.digest = pf.digest.clone();
                    p.author = pf.plan.author.clone();
                    p.created = pf.plan.created.clone();
                    p.tier = pf.plan.highest_tier().map(|t| t.to_string()).unwrap_or_else(|| "no destructive step".into());
                    for (host, h) in &pf.plan.hosts {
                        let fp = &h.fingerprint;
                        let mut lines: Vec<String> = fp.paths.iter().map(|ps| format!("{}: {}{}", ps.path, ps.kind, ps.sha256.as_deref().map(|x| format!(", sha256 {}", crate::plan::short(x))).unwrap_or_default())).collect();
                        lines.extend(fp.services.iter().map(|sv| format!("service {}: {}", sv.name, sv.state)));
                        if !lines.is_empty() {
                            p.fingerprints.push((host.clone(), lines));
                        }
                        for st in h.changes() {
                            p.steps.push((host.clone(), st.task.clone(), st.tier.clone().unwrap_or_default(), st.commands.clone(), st.diff.clone()));
                        }
                    }
                    let keys = approvers::registered_keys().unwrap_or_default();
                    let check = crate::plan::check_approvals(&pf, now, crate::plan::two_person_rule(), &crate::plan::audited_approvals(), &|x| approvers::verify(x, &keys));
                    p.approvals = pf.approvals.iter().map(|a| format!("{} ({}) until {}", a.approver, a.identity, a.expires())).collect();
                    p.needed = check.needed;
                    p.state = if approvers::applied(&pf.digest).is_some() {
                        "applied".into()
                    } else if check.enough() {
                        "approved: ready for recover apply".into()
                    } else {
                        format!("waiting: {} of {} approver(s)", check.distinct().len(), check.needed)
                    };
                }
            }
            out.push(p);
        }
    }
    out
}
