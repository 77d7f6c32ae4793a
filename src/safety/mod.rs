//! The product's promise: `recover` never makes things worse.
//!
//! Before a destructive step runs on a host, the executor asks this module
//! to (1) make sure a verified backup taken in this run covers every path the
//! step touches ([`backup`]), (2) show the step, and (3) get the confirmation
//! or approval its [`Tier`] requires ([`confirm`]). Hosts are locked against a
//! second operator ([`lock`]). No playbook author can forget any of it: it is
//! the executor's job, not the playbook's.

pub mod archive;
pub mod backup;
pub mod confirm;
pub mod freeze;
pub mod lock;
pub mod paths;
pub mod restore;

use std::fmt;

use serde::{Deserialize, Serialize};

/// How much care a step needs, from the SOP's section 10. Ordered: a step's
/// tier is the highest of what its module, its task and the baseline say.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Tier {
    /// Stateless exporters and the like: may run unattended.
    #[serde(rename = "AUTO")]
    Auto,
    /// API/Web/worker: a yes/no prompt, or `--yes` with no terminal.
    #[serde(rename = "STANDARD_HITL")]
    StandardHitl,
    /// Redis, Kafka, MinIO, ClickHouse of SignOz/Sentry: a yes/no prompt, or `--yes`.
    #[serde(rename = "CRITICAL_HITL")]
    CriticalHitl,
    /// PostgreSQL/ClickHouse data, Harbor DB, Sentry DB: the operator types the
    /// host name, or `--approve PLAYBOOK@HOST` with no terminal. Never automatic.
    #[serde(rename = "BLOCK")]
    Block,
}

impl Tier {
    pub fn parse(s: &str) -> Option<Tier> {
        match s.trim().to_uppercase().as_str() {
            "AUTO" => Some(Tier::Auto),
            "STANDARD_HITL" => Some(Tier::StandardHitl),
            "CRITICAL_HITL" => Some(Tier::CriticalHitl),
            "BLOCK" => Some(Tier::Block),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Auto => "AUTO",
            Tier::StandardHitl => "STANDARD_HITL",
            Tier::CriticalHitl => "CRITICAL_HITL",
            Tier::Block => "BLOCK",
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What makes a step destructive, as its plan says.
#[derive(Clone, Debug, Default)]
pub struct Destructive {
    /// Why, in words ("overwrites /etc/nginx/nginx.conf", "runs pg_resetwal").
    pub reason: String,
    /// Remote paths it changes or removes; a verified backup must cover each.
    pub paths: Vec<String>,
    /// Services it stops (their tier comes from the baseline).
    pub services: Vec<String>,
    /// Paths whose tier applies although the step does not change them (the volumes of a
    /// container it stops): no backup is taken of these.
    pub tier_paths: Vec<String>,
    /// The tier its module or task asks for, at least.
    pub tier: Option<Tier>,
    /// The step preserves the data itself (a rename), so no archive is needed.
    pub preserves: Option<String>,
}

/// Safety settings of one run, from the command line.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    /// `--yes`: run STANDARD_HITL and CRITICAL_HITL steps with no terminal.
    pub yes: bool,
    /// `--approve PLAYBOOK@HOST`: run that playbook's BLOCK steps on that host.
    pub approvals: Vec<String>,
    /// The playbook's name, for matching approvals.
    pub playbook: String,
    /// Prompts may be shown (stdin and stderr are terminals).
    pub interactive: bool,
    /// `--automation`: AUTO steps only, and only when the gate is green and no freeze holds.
    pub automation: bool,
    /// With `--automation`: why automation may not act at all now (frozen, gate not green).
    pub automation_blocked: Option<String>,
    /// `--break-lock`: take over a stale host lock (recorded).
    pub break_lock: bool,
    /// Who runs this (`--operator`, else `$USER`).
    pub operator: String,
    /// `recover apply`: the plan's approval ("plan 1a2b3c approved by alice, bob"); the
    /// executor lets only the plan's own steps reach the guard.
    pub plan_approval: Option<String>,
}

/// Who is running this: `$USER`, else `$LOGNAME`, else the process's user from /etc/passwd.
pub fn default_operator() -> String {
    if let Some(u) = ["USER", "LOGNAME"].iter().find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty())) {
        return u;
    }
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).and_then(|l| l.split_whitespace().nth(1)).map(str::to_string));
    if let (Some(uid), Ok(passwd)) = (uid, std::fs::read_to_string("/etc/passwd")) {
        if let Some(name) = passwd.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 2 && f[2] == uid).then(|| f[0].to_string())
        }) {
            return name;
        }
    }
    "unknown".into()
}

/// The outcome of asking for a destructive step.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// Go ahead; `how` says why (for the audit record).
    Run { how: String },
    /// Not allowed; nothing was changed. `msg` names step, host, tier and the flag that would allow it.
    Refused { msg: String },
    /// The operator asked to stop the whole run.
    Abort,
}

impl Policy {
    /// The decision that needs no terminal (flags only); `None` when a prompt must decide.
    pub fn decide_without_prompt(&self, host: &str, task: &str, tier: Tier) -> Option<Decision> {
        let approved = self.approvals.iter().any(|a| a == &format!("{}@{host}", self.playbook));
        if self.automation {
            if let Some(why) = &self.automation_blocked {
                return Some(Decision::Refused { msg: format!("step '{task}' on {host} is {tier}: --automation may not act: {why}; an approval request was recorded") });
            }
            return Some(if tier == Tier::Auto {
                Decision::Run { how: "automation: AUTO tier, gate green, no freeze".into() }
            } else {
                Decision::Refused { msg: format!("step '{task}' on {host} is {tier}: --automation runs AUTO steps only; an approval request was recorded") }
            });
        }
        if let Some(how) = &self.plan_approval {
            return Some(Decision::Run { how: how.clone() });
        }
        match tier {
            Tier::Auto => Some(Decision::Run { how: "AUTO tier".into() }),
            Tier::Block if approved => Some(Decision::Run { how: format!("--approve {}@{host}", self.playbook) }),
            Tier::Block if !self.interactive => Some(Decision::Refused {
                msg: format!(
                    "step '{task}' on {host} is BLOCK: it needs the operator to type the host name at a terminal, or --approve {}@{host}",
                    self.playbook
                ),
            }),
            Tier::StandardHitl | Tier::CriticalHitl if self.yes => Some(Decision::Run { how: "--yes".into() }),
            Tier::StandardHitl | Tier::CriticalHitl if !self.interactive => Some(Decision::Refused {
                msg: format!("step '{task}' on {host} is {tier}: confirm it at a terminal, or pass --yes"),
            }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy { playbook: "pg-wal".into(), ..Default::default() }
    }

    #[test]
    fn tiers_order_and_parse() {
        assert!(Tier::Block > Tier::CriticalHitl && Tier::CriticalHitl > Tier::StandardHitl && Tier::StandardHitl > Tier::Auto);
        assert_eq!(Tier::parse("block"), Some(Tier::Block));
        assert_eq!(Tier::parse("nope"), None);
    }

    #[test]
    fn flags_decide_without_a_terminal() {
        let p = policy();
        assert!(matches!(p.decide_without_prompt("188", "t", Tier::StandardHitl), Some(Decision::Refused { .. })));
        assert_eq!(p.decide_without_prompt("188", "t", Tier::Auto), Some(Decision::Run { how: "AUTO tier".into() }));
        let yes = Policy { yes: true, ..policy() };
        assert!(matches!(yes.decide_without_prompt("188", "t", Tier::CriticalHitl), Some(Decision::Run { .. })));
        // --yes is not enough for BLOCK; --approve is, for that host only.
        assert!(matches!(yes.decide_without_prompt("188", "t", Tier::Block), Some(Decision::Refused { .. })));
        let approve = Policy { approvals: vec!["pg-wal@188".into()], ..policy() };
        assert!(matches!(approve.decide_without_prompt("188", "t", Tier::Block), Some(Decision::Run { .. })));
        assert!(matches!(approve.decide_without_prompt("110", "t", Tier::Block), Some(Decision::Refused { .. })));
        let auto = Policy { automation: true, yes: true, ..policy() };
        assert!(matches!(auto.decide_without_prompt("188", "t", Tier::StandardHitl), Some(Decision::Refused { .. })));
        assert!(matches!(auto.decide_without_prompt("188", "t", Tier::Auto), Some(Decision::Run { .. })));
        let frozen = Policy { automation_blocked: Some("frozen".into()), ..auto };
        assert!(matches!(frozen.decide_without_prompt("188", "t", Tier::Auto), Some(Decision::Refused { .. })));
        // At a terminal, a prompt decides.
        let tty = Policy { interactive: true, ..policy() };
        assert_eq!(tty.decide_without_prompt("188", "t", Tier::Block), None);
    }
}
