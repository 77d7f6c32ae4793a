//! `recover freeze --reason TEXT`, `recover thaw`, `recover status`: the SOP's
//! automation freeze (section 2), and what state this control machine is in.
//!
//! The freeze is kept where every operator and every `--automation` caller sees it, wherever
//! they run: on every host of the inventory (`recover_freeze_file`, read with the host lock by
//! each `--automation` run), and in the shared folder of this machine as a cache.

use std::sync::Arc;

use clap::Args;

use super::Global;
use crate::executor::{exit, vars, VarSources};
use crate::safety::freeze;
use crate::template::Templates;
use crate::transport::{quote, Cmd, Connection};

#[derive(Args, Debug)]
pub struct FreezeArgs {
    /// Why (shown to every --automation run that is refused)
    #[arg(long, required = true)]
    pub reason: String,
}

/// Writes (`Some(text)`) or removes (`None`) the freeze record on every host of the inventory
/// (or of `-l`); one line per host. Returns how many hosts could not be reached or written.
async fn on_hosts(g: &Global, text: Option<&str>) -> anyhow::Result<usize> {
    let inventory = Arc::new(super::load_inventory(g)?);
    let limit = super::limit(g, &inventory)?;
    let hosts = crate::executor::select_hosts(&inventory, "all", limit.as_deref()).map_err(anyhow::Error::msg)?;
    let sources = VarSources::new(inventory, Templates::new(), super::extra_vars(g)?, String::new(), false, String::new());
    let mut handles = Vec::new();
    for host in hosts {
        let sources = sources.clone();
        let text = text.map(str::to_string);
        handles.push(tokio::spawn(async move {
            let ctx = sources.inventory_context(&host);
            let file = ctx
                .get_attr("recover_freeze_file")
                .ok()
                .filter(|v| !v.is_undefined() && !v.is_none())
                .map(|v| crate::template::pyrepr::py_str(&v))
                .unwrap_or_else(|| freeze::DEFAULT_HOST_FREEZE_FILE.into());
            let res = async {
                let target = vars::target(&ctx, &host)?;
                let conn = Connection::open(&target).await.map_err(|e| e.to_string())?;
                let f = quote::quote(&file);
                let script = match &text {
                    Some(_) => format!("set -e; d=$(dirname -- {f}); mkdir -p -- \"$d\"; t=$(mktemp \"$d/.freeze.XXXXXXXX\"); cat > \"$t\"; chmod 0644 \"$t\"; mv -f -- \"$t\" {f}"),
                    None => format!("rm -f -- {f}"),
                };
                let cmd = |user: Option<String>| {
                    let c = Cmd::shell(script.clone()).become_user(user).label("write the fleet's freeze record");
                    match &text {
                        Some(t) => c.stdin(t.clone().into_bytes()),
                        None => c,
                    }
                };
                // As the login user; where that cannot write it (/var/lib), as root through sudo -n.
                let mut out = conn.exec(&cmd(None)).await.map_err(|e| e.to_string())?;
                if !out.ok() {
                    out = conn.exec(&cmd(Some("root".into()))).await.map_err(|e| e.to_string())?;
                }
                conn.close().await;
                if out.ok() { Ok(file.clone()) } else { Err(format!("{file}: {}", out.stderr_str().trim())) }
            }
            .await;
            (host, res)
        }));
    }
    let mut failed = 0;
    for h in handles {
        let Ok((host, res)) = h.await else { continue };
        match res {
            Ok(file) => {
                freeze::cache(&host, text.and_then(|t| freeze::parse_freeze(t).ok()).as_ref());
                outln!("  {host}: {} {file}", if text.is_some() { "frozen in" } else { "removed" })?
            }
            Err(e) => {
                failed += 1;
                outln!("  {host}: {}", console::style(format!("NOT done: {e}")).red())?;
            }
        }
    }
    Ok(failed)
}

pub async fn freeze_cmd(g: &Global, a: &FreezeArgs) -> anyhow::Result<i32> {
    let f = freeze::freeze(&a.reason, &crate::safety::default_operator())?;
    outln!("automation frozen by {} at {}: {}", f.by, f.since, f.reason)?;
    outln!("  shared folder: {}", freeze::shared_dir().display())?;
    let failed = on_hosts(g, Some(&serde_json::to_string_pretty(&f).unwrap_or_default())).await?;
    outln!("--automation runs are refused until `recover thaw`.")?;
    if failed > 0 {
        outln!("{} host(s) could not be frozen: an --automation run from another machine may still act there", failed)?;
        return Ok(exit::UNREACHABLE);
    }
    Ok(0)
}

pub async fn thaw_cmd(g: &Global) -> anyhow::Result<i32> {
    match freeze::thaw()? {
        Some(f) => outln!("automation thawed by {} (it was frozen by {} since {}: {})", crate::safety::default_operator(), f.by, f.since, f.reason)?,
        None => outln!("automation was not frozen in {}", freeze::shared_dir().display())?,
    }
    let failed = on_hosts(g, None).await?;
    if failed > 0 {
        outln!("{} host(s) still hold a freeze record: --automation stays refused there", failed)?;
        return Ok(exit::UNREACHABLE);
    }
    Ok(0)
}

pub fn status_cmd(g: &Global) -> anyhow::Result<i32> {
    if g.output == super::Output::Json {
        let logs = crate::report::run_logs();
        let doc = serde_json::json!({
            "freeze": freeze::current(),
            "freeze_unreadable": freeze::state().err(),
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
    match freeze::state() {
        Ok(Some(f)) => outln!("freeze:     FROZEN since {} by {}: {}", f.since, f.by, crate::report::clean_line(&f.reason))?,
        Ok(None) => outln!("freeze:     none in the shared folder (each host's own record is read by every --automation run)")?,
        Err(why) => outln!("freeze:     FROZEN: {why}")?,
    }
    for (h, f, at) in freeze::cached_host_freezes() {
        outln!("            host {h} holds a freeze (read {at}): since {} by {}: {}", f.since, crate::report::clean_line(&f.by), crate::report::clean_line(&f.reason))?;
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
            outln!("last run:   {} {} by {} ({end})", s["run_id"].as_str().unwrap_or("?"), crate::report::clean_line(s["playbook"].as_str().unwrap_or("?")), crate::report::clean_line(s["operator"].as_str().unwrap_or("?")))?;
        }
    }
    outln!("backups:    {} recorded", crate::report::backup_records().len())?;
    Ok(0)
}
