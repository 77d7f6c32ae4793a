//! `hostname`: the host's name, as ansible-core's module sets it on Debian: with systemd
//! running, `hostnamectl` (the static name first, then the transient one); without it,
//! `/etc/hostname`. Its diff (`hostname = NAME`) and facts (`ansible_hostname`,
//! `ansible_nodename`, `ansible_fqdn`, `ansible_domain`). Renaming a host rewrites
//! `/etc/hostname`: the safety engine backs it up and asks (a K3s node's name is its identity).

use async_trait::async_trait;
use documented::Documented;
use serde_json::{json, Value as Json};

use crate::error::{SResult, SourceError};
use crate::modules::{opt, req, ArgSpec, Kind, Module, Outcome, Plan, StepCtx, StepError};
use crate::playbook::Task;
use crate::transport::{quote, Cmd};

/// `hostname`: the host's name, set in `/etc/hostname` and the running kernel (systemd's
/// `hostnamectl` where there is one).
///
/// Returns: `name`, `ansible_facts` (`ansible_hostname`, `ansible_nodename`, `ansible_fqdn`,
/// `ansible_domain`).
///
/// Check mode: reads the name and reports whether it would change; changes nothing.
#[derive(Documented)]
pub struct Hostname;

/// ansible-core's `use` values; recover implements the ones a Debian host uses.
const USES: &[&str] = &["alpine", "debian", "freebsd", "generic", "macos", "macosx", "darwin", "openbsd", "openrc", "redhat", "sles", "solaris", "systemd"];
const SUPPORTED: &[&str] = &["debian", "systemd"];

/// `socket.getfqdn()` on the host (python3 when there, else `hostname -f`).
const FQDN: &str = "python3 -c 'import socket; print(socket.getfqdn())' 2>/dev/null || hostname -f 2>/dev/null || hostname";

fn facts(name: &str, fqdn: &str) -> Json {
    let domain = fqdn.split('.').skip(1).collect::<Vec<_>>().join(".");
    json!({ "ansible_hostname": name.split('.').next().unwrap_or(name), "ansible_nodename": name, "ansible_fqdn": fqdn, "ansible_domain": domain })
}

#[async_trait]
impl Module for Hostname {
    fn name(&self) -> &'static str {
        "hostname"
    }
    fn doc(&self) -> &'static str {
        Self::DOCS
    }
    fn spec(&self) -> &'static [ArgSpec] {
        const S: &[ArgSpec] = &[
            req("name", Kind::Str).doc("The host name to set."),
            opt("use", Kind::Str).doc("The strategy (`systemd`, `debian`, ...; found when unset)."),
        ];
        S
    }
    fn validate(&self, task: &Task) -> SResult<()> {
        if let Some(u) = task.args.get("use").and_then(Json::as_str).filter(|u| !crate::template::is_template(u)) {
            if !USES.contains(&u) {
                return Err(SourceError::new(task.arg_span("use"), format!("hostname: value of use must be one of: {}, got: {u}", USES.join(", "))));
            }
            if !SUPPORTED.contains(&u) {
                return Err(SourceError::new(task.arg_span("use"), format!("hostname: use: {u} is not supported by recover (debian or systemd)")));
            }
        }
        Ok(())
    }
    async fn plan(&self, ctx: &StepCtx<'_>, args: &Json) -> Result<Plan, StepError> {
        let name = match args.get("name") {
            Some(Json::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => return Err(StepError::failed("hostname: missing required arguments: name")),
        };
        let use_ = args.get("use").and_then(Json::as_str);
        if let Some(u) = use_.filter(|u| !SUPPORTED.contains(u)) {
            return Err(StepError::failed(format!("hostname: use: {u} is not supported by recover (debian or systemd)")));
        }
        let out = ctx
            .run(Cmd::shell("if [ -d /run/systemd/system ] && command -v hostnamectl >/dev/null; then echo systemd; hostnamectl --transient status && hostnamectl --static status; else echo file; cat /etc/hostname 2>/dev/null; fi"))
            .await?;
        let text = out.stdout_str();
        let mut lines = text.lines();
        let detected = lines.next().unwrap_or("file");
        let systemd = match use_ {
            Some("systemd") | Some("debian") => true,
            _ => detected == "systemd",
        };
        if systemd && detected != "systemd" {
            return Err(StepError::failed("Failed to find required executable \"hostnamectl\" (or systemd is not running)"));
        }
        if out.rc != 0 {
            return Err(StepError::failed(format!("Command failed rc={}, out={}, err={}", out.rc, text.trim(), out.stderr_str().trim())));
        }
        let (current, permanent) = if systemd {
            (lines.next().unwrap_or("").trim().to_string(), lines.next().unwrap_or("").trim().to_string())
        } else {
            let p = lines.collect::<Vec<_>>().join("\n").trim().to_string();
            (p.clone(), p)
        };
        if systemd && name.len() > 64 && (current != name || permanent != name) {
            return Err(StepError::failed("name cannot be longer than 64 characters on systemd servers, try a shorter name"));
        }
        let mut plan = Plan::ok();
        plan.result.insert("name".into(), json!(name));
        let q = quote::quote(&name);
        if permanent != name {
            plan.changes.push(format!("set the static host name to {name} (was {permanent})"));
            plan.commands.push(if systemd { Cmd::shell(format!("hostnamectl --pretty --static set-hostname {q}")) } else { Cmd::shell(format!("printf '%s\\n' {q} > /etc/hostname")) });
            plan.destructive = Some(crate::safety::Destructive { reason: format!("renames host {} to {name} (rewrites /etc/hostname)", ctx.host), paths: vec!["/etc/hostname".into()], ..Default::default() });
        }
        if systemd && current != name {
            plan.changes.push(format!("set the running host name to {name} (was {current})"));
            plan.commands.push(Cmd::shell(format!("hostnamectl --transient set-hostname {q}")));
        }
        if plan.changed() {
            let before = if name != current { &current } else { &permanent };
            plan.diff = Some(crate::modules::FileDiff { path: "hostname".into(), before: None, after: None, mode: None, prepared: Some(format!("--- before\n+++ after\n@@ -1 +1 @@\n-hostname = {before}\n+hostname = {name}\n")) });
        }
        if ctx.check || !plan.changed() {
            let fqdn = ctx.run(Cmd::shell(FQDN)).await?.stdout_str().trim().to_string();
            plan.result.insert("ansible_facts".into(), facts(&name, &fqdn));
        }
        Ok(plan)
    }
    async fn apply(&self, ctx: &StepCtx<'_>, plan: Plan) -> Result<Outcome, StepError> {
        let name = plan.result.get("name").and_then(Json::as_str).unwrap_or_default().to_string();
        let mut out = crate::modules::run_plan_commands(ctx, plan).await?;
        out.result.remove("stdout");
        let fqdn = ctx.run(Cmd::shell(FQDN)).await?.stdout_str().trim().to_string();
        out.result.insert("ansible_facts".into(), facts(&name, &fqdn));
        Ok(out)
    }
}
