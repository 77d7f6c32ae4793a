//! `service_facts`: `ansible_facts.services`, as ansible-core's service_facts builds it on a
//! systemd host: the SysV scripts (`service --status-all`), then every systemd service unit
//! (`list-units`: running or stopped and its load state; `list-unit-files`: enabled,
//! disabled, static, masked ...). Read-only.

use async_trait::async_trait;
use documented::Documented;
use serde_json::{json, Value as Json};

use crate::modules::{ArgSpec, Module, Plan, StepCtx, StepError};
use crate::transport::Cmd;

/// `service_facts`: every service of the host (systemd units, and sysv scripts) with its state and
/// status, as ansible-core lists them.
///
/// Returns: `ansible_facts.services` (name to `name`, `state`, `status`, `source`).
///
/// Check mode: runs as in a real run (read-only).
#[derive(Documented)]
pub struct ServiceFacts;

const SCRIPT: &str = "if command -v service >/dev/null 2>&1 && [ -d /etc/init.d ]; then service --status-all 2>&1; fi; echo @@units; \
if [ -d /run/systemd/system ]; then systemctl list-units --no-pager --type service --all --plain 2>/dev/null; echo @@files; \
systemctl list-unit-files --no-pager --type service --all 2>/dev/null | while read -r n s rest; do case $n in *.service) echo \"$n $s $(systemctl show \"$n\" --property=ActiveState 2>/dev/null)\";; esac; done; fi";

/// The services map from [`SCRIPT`]'s output.
pub fn parse(out: &str) -> serde_json::Map<String, Json> {
    const BAD: [&str; 3] = ["not-found", "masked", "failed"];
    let mut services = serde_json::Map::new();
    let mut section = "sysv";
    for line in out.lines() {
        match line.trim() {
            "@@units" => {
                section = "units";
                continue;
            }
            "@@files" => {
                section = "files";
                continue;
            }
            _ => {}
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        match section {
            "sysv" if f.len() >= 4 => {
                let name = f[3..].join(" ");
                let state = if f[1] == "+" { "running" } else { "stopped" };
                services.insert(name.clone(), json!({"name": name, "state": state, "source": "sysv"}));
            }
            "units" if line.contains(".service") && f.len() >= 4 => {
                let status = f[..f.len() - 1].iter().find(|w| BAD.contains(w)).map(|s| s.to_string()).unwrap_or_else(|| f[2].to_string());
                let state = if f[3] == "running" { "running" } else { "stopped" };
                services.insert(f[0].to_string(), json!({"name": f[0], "state": state, "status": status, "source": "systemd"}));
            }
            "files" if f.len() >= 2 => {
                let (name, status) = (f[0].to_string(), f[1].to_string());
                match services.get_mut(&name) {
                    None => {
                        let state = f.get(2).and_then(|a| a.strip_prefix("ActiveState=")).filter(|s| !s.is_empty()).unwrap_or("unknown");
                        services.insert(name.clone(), json!({"name": name, "state": state, "status": status, "source": "systemd"}));
                    }
                    Some(Json::Object(s)) if !s.get("status").and_then(Json::as_str).is_some_and(|x| BAD.contains(&x)) => {
                        s.insert("status".into(), json!(status));
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    services
}

#[async_trait]
impl Module for ServiceFacts {
    fn name(&self) -> &'static str {
        "service_facts"
    }
    fn doc(&self) -> &'static str {
        Self::DOCS
    }
    fn spec(&self) -> &'static [ArgSpec] {
        &[]
    }
    async fn plan(&self, ctx: &StepCtx<'_>, _args: &Json) -> Result<Plan, StepError> {
        let out = ctx.run(Cmd::shell(SCRIPT)).await?;
        Ok(Plan::done(json!({"ansible_facts": {"services": parse(&out.stdout_str())}})))
    }
}
