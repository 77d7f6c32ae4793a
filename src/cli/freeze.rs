//! `recover freeze --reason TEXT`, `recover thaw`, `recover status`: the SOP's
//! automation freeze (section 2), and what state this control machine is in.

use clap::Args;

use super::Global;
use crate::safety::freeze;

#[derive(Args, Debug)]
pub struct FreezeArgs {
    /// Why (shown to every --automation run that is refused)
    #[arg(long, required = true)]
    pub reason: String,
}

pub fn freeze_cmd(_g: &Global, a: &FreezeArgs) -> anyhow::Result<i32> {
    let f = freeze::freeze(&a.reason, &crate::safety::default_operator())?;
    outln!("automation frozen by {} at {}: {}", f.by, f.since, f.reason)?;
    outln!("--automation runs are refused until `recover thaw`.")?;
    Ok(0)
}

pub fn thaw_cmd(_g: &Global) -> anyhow::Result<i32> {
    match freeze::thaw()? {
        Some(f) => outln!("automation thawed by {} (it was frozen by {} since {}: {})", crate::safety::default_operator(), f.by, f.since, f.reason)?,
        None => outln!("automation was not frozen")?,
    }
    Ok(0)
}

pub fn status_cmd(g: &Global) -> anyhow::Result<i32> {
    if g.output == super::Output::Json {
        let logs = crate::report::run_logs();
        let doc = serde_json::json!({
            "freeze": freeze::current(),
            "gate": freeze::gate(),
            "automation_blocked": freeze::automation_blocked(None),
            "runs": logs.len(),
            "state_dir": crate::report::state_dir().display().to_string(),
            "shared_dir": freeze::shared_dir().display().to_string(),
            "last_run": logs.last().map(|l| l.display().to_string()),
            "backups": crate::report::backup_records().len(),
        });
        outln!("{doc}")?;
        return Ok(0);
    }
    match freeze::current() {
        Some(f) => outln!("freeze:     FROZEN since {} by {}: {}", f.since, f.by, f.reason)?,
        None => outln!("freeze:     none")?,
    }
    match freeze::gate() {
        Some(g) if g.green => outln!("gate:       green at {}", g.at)?,
        Some(g) => outln!("gate:       NOT green at {}: {}", g.at, g.unmet.join("; "))?,
        None => outln!("gate:       not evaluated")?,
    }
    match freeze::automation_blocked(None) {
        None => outln!("automation: may run AUTO steps")?,
        Some(why) => outln!("automation: refused ({why})")?,
    }
    outln!("shared:     freeze and gate in {}", freeze::shared_dir().display())?;
    let logs = crate::report::run_logs();
    outln!("runs:       {} recorded under {}", logs.len(), crate::report::state_dir().display())?;
    if let Some(last) = logs.last() {
        let ev = crate::report::read_events(last);
        if let Some(s) = ev.iter().find(|e| e["event"] == "run_start") {
            let end = ev.iter().rev().find(|e| e["event"] == "recap").map(|r| format!("exit {}", r["exit_code"])).unwrap_or_else(|| "did not finish".into());
            outln!("last run:   {} {} by {} ({end})", s["run_id"].as_str().unwrap_or("?"), s["playbook"].as_str().unwrap_or("?"), s["operator"].as_str().unwrap_or("?"))?;
        }
    }
    outln!("backups:    {} recorded", crate::report::backup_records().len())?;
    Ok(0)
}
