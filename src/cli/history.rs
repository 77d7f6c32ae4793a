//! `recover history [RUN]`: the audit trail of past runs, from the run logs.

use clap::Args;

use super::{Global, Output};
use crate::report::{read_events, run_logs};

#[derive(Args, Debug)]
pub struct HistoryArgs {
    /// A run id (or its first characters): show that run's record
    pub run: Option<String>,
    /// Check the run logs' hash chain: every line must carry the sha256 of the one before it,
    /// and each run's first line that of the last line of an earlier run. Exit 1 naming the
    /// first line that does not fit (an edited, removed or inserted line, a removed run)
    #[arg(long, conflicts_with = "run")]
    pub verify: bool,
    /// Write RUN as one self-contained HTML page (its grid, diffs, backups, approvals and recap;
    /// it opens from disk, with no server), e.g. for the incident record
    #[arg(long, value_name = "FILE", requires = "run")]
    pub html: Option<std::path::PathBuf>,
}

pub fn run(g: &Global, a: &HistoryArgs) -> anyhow::Result<i32> {
    if a.verify {
        let r = crate::report::runlog::verify_chain();
        let state = crate::report::state_dir();
        if g.output == Output::Json {
            outln!(
                "{}",
                serde_json::json!({
                    "logs": r.logs, "lines": r.lines, "ok": r.broken.is_none(),
                    "unchained": r.unchained.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
                    "broken": r.broken.as_ref().map(|(p, n, why)| serde_json::json!({"log": p.display().to_string(), "line": n, "why": why})),
                })
            )?;
        } else {
            for u in &r.unchained {
                outln!("note: {} was written before run logs were chained: not checked", u.display())?;
            }
            match &r.broken {
                Some((p, n, why)) => outln!("{}:{n}: the chain breaks here: {why}", p.display())?,
                None => outln!("{} run log(s), {} line(s) under {}: the chain holds", r.logs, r.lines, state.display())?,
            }
        }
        return Ok(if r.broken.is_some() { 1 } else { 0 });
    }
    if let (Some(file), Some(id)) = (&a.html, &a.run) {
        let full = run_logs().iter().filter_map(|l| l.file_stem().and_then(|n| n.to_str()).and_then(|n| n.rsplit('-').next()).map(str::to_string)).find(|n| n.starts_with(id.as_str())).ok_or_else(|| anyhow::anyhow!("no run {id} in {}", crate::report::state_dir().display()))?;
        let page = crate::serve::run_html(&full)?;
        std::fs::write(file, page).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        outln!("run {full}: {}", file.display())?;
        return Ok(0);
    }
    let logs = run_logs();
    let Some(id) = &a.run else {
        if g.output == Output::Json {
            for log in &logs {
                let ev = read_events(log);
                let Some(start) = ev.iter().find(|e| e["event"] == "run_start") else { continue };
                let exit = ev.iter().rev().find(|e| e["event"] == "recap").map(|r| r["exit_code"].clone()).unwrap_or(serde_json::Value::Null);
                outln!("{}", serde_json::json!({"run_id": start["run_id"], "at": start["at"], "operator": start["operator"], "playbook": start["playbook"], "exit_code": exit, "finished": !exit.is_null(), "log": log.display().to_string()}))?;
            }
            return Ok(0);
        }
        if logs.is_empty() {
            outln!("no runs recorded under {}", crate::report::state_dir().display())?;
            return Ok(0);
        }
        outln!("{:<14} {:<22} {:<10} {:<28} result", "run", "started", "operator", "playbook")?;
        for log in &logs {
            let ev = read_events(log);
            if let Some(ap) = ev.iter().find(|e| e["event"] == "plan_approval") {
                let id = log.file_stem().and_then(|n| n.to_str()).and_then(|n| n.rsplit('-').next()).unwrap_or("?");
                let plan = ap["file"].as_str().unwrap_or("?").rsplit('/').next().unwrap_or("?").to_string();
                outln!(
                    "{:<14} {:<22} {:<10} {:<28} approved plan {} until {}",
                    crate::report::clean_line(id),
                    crate::report::clean_line(&ap["at"].as_str().unwrap_or("?").chars().take(19).collect::<String>()),
                    crate::report::clean_line(ap["approver"].as_str().unwrap_or("?")),
                    crate::report::clean_line(&plan),
                    ap["plan_digest"].as_str().unwrap_or("?").chars().take(12).collect::<String>(),
                    ap["expires"].as_str().unwrap_or("?")
                )?;
                continue;
            }
            let Some(start) = ev.iter().find(|e| e["event"] == "run_start") else { continue };
            let result = match ev.iter().rev().find(|e| e["event"] == "recap") {
                Some(r) => format!("exit {}", r["exit_code"]),
                None => "did not finish (see `recover history RUN`)".into(),
            };
            let playbook = start["playbook"].as_str().unwrap_or("?").rsplit('/').next().unwrap_or("?").to_string();
            outln!(
                "{:<14} {:<22} {:<10} {:<28} {result}",
                crate::report::clean_line(start["run_id"].as_str().unwrap_or("?")),
                crate::report::clean_line(&start["at"].as_str().unwrap_or("?").chars().take(19).collect::<String>()),
                crate::report::clean_line(start["operator"].as_str().unwrap_or("?")),
                crate::report::clean_line(&playbook)
            )?;
        }
        return Ok(0);
    };
    let log = logs
        .iter()
        .find(|l| l.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.contains(&format!("-{id}"))))
        .ok_or_else(|| anyhow::anyhow!("no run {id} in {}", crate::report::state_dir().display()))?;
    let (events, corrupt) = crate::report::read_events_counted(log);
    if corrupt > 0 {
        eprintln!("warning: {}: {corrupt} line(s) are not valid events and were skipped (a run killed mid-write, or the log was damaged)", log.display());
    }
    if g.output == Output::Json {
        for e in &events {
            outln!("{e}")?;
        }
        return Ok(0);
    }
    outln!("run log: {}", log.display())?;
    for e in &events {
        let at = e["at"].as_str().unwrap_or("").chars().skip(11).take(8).collect::<String>();
        let line = match e["event"].as_str().unwrap_or("") {
            "run_start" => format!("start  by {} : {}", e["operator"].as_str().unwrap_or("?"), e["command"].as_array().map(|c| c.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join(" ")).unwrap_or_default()),
            "play_start" => format!("play   {}", e["play"].as_str().unwrap_or("")),
            "task_start" => format!("{:<11} {:>5}  {}", "started", e["host"].as_str().unwrap_or(""), e["task"].as_str().unwrap_or("")),
            "task" => format!("{:<11} {:>5}  {}{}", e["status"].as_str().unwrap_or(""), e["host"].as_str().unwrap_or(""), e["task"].as_str().unwrap_or(""), e["msg"].as_str().map(|m| format!(": {m}")).unwrap_or_default()),
            "preview" => format!("preview {:>4}  {} [{}]: {}", e["host"].as_str().unwrap_or(""), e["task"].as_str().unwrap_or(""), e["tier"].as_str().unwrap_or(""), e["reason"].as_str().unwrap_or("")),
            "approval" => format!("{:<11} {:>5}  {} [{}]: {}", e["decision"].as_str().unwrap_or(""), e["host"].as_str().unwrap_or(""), e["task"].as_str().unwrap_or(""), e["tier"].as_str().unwrap_or(""), e["how"].as_str().unwrap_or("")),
            "backup" => format!("backup {:>5}  {} sha256 {} ({} entries)", e["host"].as_str().unwrap_or(""), e["backup"]["archive"].as_str().unwrap_or(""), e["backup"]["sha256"].as_str().unwrap_or(""), e["backup"]["entries"]),
            "lock_broken" => format!("lock   {:>5}  broken; it was held by {}", e["host"].as_str().unwrap_or(""), e["previous"].as_str().unwrap_or("")),
            "recap" => format!("end    exit {}", e["exit_code"]),
            "plan_approval" => format!("approved plan {} ({}) by {} until {}", e["file"].as_str().unwrap_or(""), e["plan_digest"].as_str().unwrap_or("").chars().take(12).collect::<String>(), e["approver"].as_str().unwrap_or(""), e["expires"].as_str().unwrap_or("")),
            "plan_apply" => format!("plan   {} ({}) approved by {}", e["file"].as_str().unwrap_or(""), e["plan_digest"].as_str().unwrap_or("").chars().take(12).collect::<String>(), e["approvals"].as_array().map(|a| a.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join(", ")).unwrap_or_default()),
            "plan_stale" => format!("stale  {:>5}  refused: {}", e["host"].as_str().unwrap_or(""), e["differences"].as_array().map(|a| a.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join("; ")).unwrap_or_default()),
            other => other.to_string(),
        };
        // What a run log holds came from hosts, files and users: shown escaped.
        outln!("{}  {}", crate::report::clean_line(&at), crate::report::clean_line(&line))?;
    }
    if !events.iter().any(|e| e["event"] == "recap") {
        outln!("(the run did not finish: the last line above is where it stopped)")?;
    }
    Ok(0)
}
