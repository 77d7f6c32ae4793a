//! `recover backups list | verify ID | restore ID`: every verified backup a
//! run took (from the run logs), checked again or brought back.

use std::sync::Arc;

use clap::{Args, Subcommand};

use super::{Global, Output};
use crate::executor::{exit, vars, VarSources};
use crate::report::{backup_records, Event, RunLog};
use crate::safety::backup::{self, BackupRecord, Remote};
use crate::safety::confirm::{interactive, Confirmer};
use crate::safety::restore::{restore, Restored};
use crate::safety::{Policy, Tier};
use crate::template::Templates;
use crate::transport::Connection;

#[derive(Args, Debug)]
pub struct BackupsArgs {
    #[command(subcommand)]
    pub command: BackupsCommand,
}

#[derive(Subcommand, Debug)]
pub enum BackupsCommand {
    /// The backups recorded by past runs (newest last); --host narrows
    List,
    /// Read a backup's archive end to end on its host: entry count and sha256
    Verify { id: String },
    /// Bring a backup back (backs up the current state first, asks, moves it aside, extracts safely)
    Restore {
        id: String,
        /// With no terminal: confirm HITL tiers
        #[arg(long)]
        yes: bool,
        /// With no terminal: approve a BLOCK restore on HOST (restore@HOST)
        #[arg(long, value_name = "restore@HOST")]
        approve: Vec<String>,
    },
}

fn find(id: &str) -> anyhow::Result<BackupRecord> {
    let all = backup_records();
    let hits: Vec<&BackupRecord> = all.iter().filter(|r| r.id.starts_with(id)).collect();
    match hits.as_slice() {
        [] => anyhow::bail!("no backup {id} in the run logs under {} (see `recover backups list`)", crate::report::state_dir().display()),
        [one] => Ok((*one).clone()),
        many => anyhow::bail!("'{id}' matches {} backups; give more of the id", many.len()),
    }
}

pub async fn run(g: &Global, a: &BackupsArgs) -> anyhow::Result<i32> {
    match &a.command {
        BackupsCommand::List => {
            let records: Vec<BackupRecord> = backup_records().into_iter().filter(|r| g.host.as_ref().is_none_or(|h| &r.host == h)).collect();
            if g.output == Output::Json {
                for r in &records {
                    outln!("{}", serde_json::to_string(r)?)?;
                }
                return Ok(0);
            }
            if records.is_empty() {
                outln!("no backups recorded")?;
            }
            for r in &records {
                outln!("{}  {:>5}  {}  {:>10}  {} entries  {}", r.id, r.host, r.created_at.chars().take(19).collect::<String>(), backup::human(r.bytes), r.entries, r.archive)?;
                outln!("{:14}sources: {}   task: {}", "", r.sources.join(", "), r.task)?;
            }
            Ok(0)
        }
        BackupsCommand::Verify { id } => {
            let record = find(id)?;
            let (conn, user, _) = open(g, &record.host).await?;
            let remote = Remote { conn: &conn, host: &record.host, user };
            let res = backup::verify(&remote, &record.archive, &record.sha256, record.entries).await;
            conn.close().await;
            if g.output == Output::Json {
                outln!("{}", serde_json::json!({"id": record.id, "host": record.host, "archive": record.archive, "valid": res.is_ok(), "error": res.as_ref().err().map(|e| e.to_string()), "entries": record.entries, "sha256": record.sha256}))?;
                return Ok(if res.is_ok() { 0 } else { exit::FAILED });
            }
            match res {
                Ok(()) => {
                    outln!("{} on {}: verified ({} entries, sha256 {})", record.archive, record.host, record.entries, record.sha256)?;
                    Ok(0)
                }
                Err(e) => {
                    outln!("{} on {}: NOT valid: {e}", record.archive, record.host)?;
                    Ok(exit::FAILED)
                }
            }
        }
        BackupsCommand::Restore { id, yes, approve } => {
            let record = find(id)?;
            let (conn, user, ctx) = open(g, &record.host).await?;
            let root = super::project_root();
            let inventory = super::load_inventory(g)?;
            let baseline = match inventory.sources.first().and_then(|inv| crate::baseline::locate(&root, inv)) {
                Some(p) => Some(crate::baseline::Baseline::load(&p)?),
                None => None,
            };
            let templates = Templates::new();
            let tier = match &baseline {
                Some(b) => b.tier_for(&record.sources, &[], None, &ctx, &templates)?.or(b.default_tier),
                None => None,
            }
            .unwrap_or(Tier::StandardHitl);
            let operator = crate::safety::default_operator();
            let policy = Policy { yes: *yes, approvals: approve.clone(), playbook: "restore".into(), interactive: interactive(), operator: operator.clone(), ..Default::default() };
            let confirmer = Confirmer::new(policy);
            let run_id = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
            let backup_root = ctx.get_attr("recover_backup_root").ok().filter(|v| !v.is_undefined()).map(|v| crate::template::pyrepr::py_str(&v)).unwrap_or_else(|| "/var/backups/recover".into());
            let remote = Remote { conn: &conn, host: &record.host, user };
            let mut log = if g.dry_run { None } else { RunLog::create(&run_id).ok() };
            if let Some(l) = log.as_mut() {
                l.write(&Event::RunStart { run_id: run_id.clone(), playbook: format!("backups restore {}", record.id), check: false, operator, command: std::env::args().collect() });
            }
            outln!("restore {} on {} [{tier}]: {}", record.id, record.host, record.archive)?;
            let outcome = restore(&remote, &record, g.dry_run, tier, &confirmer, &run_id, &backup_root).await;
            conn.close().await;
            let (code, decision, how) = match outcome {
                Ok(Restored::Planned(plan)) => {
                    for p in plan {
                        outln!("  would {p}")?;
                    }
                    return Ok(0);
                }
                Ok(Restored::Done { aside, backup, how }) => {
                    if let (Some(b), Some(l)) = (&backup, log.as_mut()) {
                        l.write(&Event::Backup { host: record.host.clone(), task: format!("restore {}", record.id), backup: serde_json::to_value(b).unwrap_or_default() });
                    }
                    if let Some(b) = &backup {
                        outln!("  backed up the current state: {} (sha256 {})", b.archive, b.sha256)?;
                    }
                    for a in &aside {
                        outln!("  previous state kept at {a}")?;
                    }
                    outln!("  restored {} ({} entries), verified", record.sources.join(", "), record.entries)?;
                    (0, "run", how)
                }
                Ok(Restored::Refused(msg)) => {
                    outln!("  REFUSED: {msg}")?;
                    (exit::REFUSED, "refused", msg)
                }
                Err(msg) => {
                    outln!("  FAILED: {msg}")?;
                    (exit::FAILED, "failed", msg)
                }
            };
            if let Some(l) = log.as_mut() {
                l.write(&Event::Approval { host: record.host.clone(), task: format!("restore {}", record.id), tier: tier.to_string(), decision: decision.into(), how });
                l.write(&Event::Recap { hosts: Default::default(), exit_code: code });
            }
            Ok(code)
        }
    }
}

/// Connects to an inventory host as its usual user (with its `ansible_become`).
async fn open(g: &Global, host: &str) -> anyhow::Result<(Connection, Option<String>, minijinja::Value)> {
    let inventory = Arc::new(super::load_inventory(g)?);
    if !inventory.hosts.contains_key(host) {
        anyhow::bail!("host {host} of this backup is not in the inventory");
    }
    let sources = VarSources::new(inventory, Templates::new(), super::extra_vars(g)?, String::new(), false, String::new());
    let ctx = sources.inventory_context(host);
    let target = vars::target(&ctx, host).map_err(anyhow::Error::msg)?;
    let conn = Connection::open(&target).await.map_err(|e| anyhow::anyhow!("host {host}: {e}"))?;
    let (escalate, user) = vars::become_default(&ctx);
    Ok((conn, escalate.then(|| user.unwrap_or_else(|| "root".into())), ctx))
}
