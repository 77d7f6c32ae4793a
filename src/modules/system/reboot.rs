//! `reboot`: reboot the host and wait until it is back, as ansible-core's action: the boot id
//! read first (`boot_time_command`), `shutdown -r` (or `reboot_command`), then a new
//! connection until the boot id differs and `test_command` succeeds, within `reboot_timeout`;
//! `post_reboot_delay` after. In check mode it reports what it would do. A reboot stops every
//! service of the host: the safety engine asks for it at CRITICAL_HITL at least.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use documented::Documented;
use serde_json::{json, Value as Json};

use crate::modules::commands::wait_for_connection::{secs, until_answers};
use crate::modules::{opt, ArgSpec, Kind, Module, Outcome, Plan, StepCtx, StepError};
use crate::transport::Cmd;

/// `reboot`: reboots the host and waits until it is back (its boot id changed and `test_command`
/// succeeds). A reboot stops every service of the host: CRITICAL_HITL at least.
///
/// Returns: `rebooted`, `elapsed`.
///
/// Check mode: reports the reboot it would make; does not reboot.
#[derive(Documented)]
pub struct Reboot;

#[async_trait]
impl Module for Reboot {
    fn name(&self) -> &'static str {
        "reboot"
    }
    fn doc(&self) -> &'static str {
        Self::DOCS
    }
    fn spec(&self) -> &'static [ArgSpec] {
        const S: &[ArgSpec] = &[
            opt("pre_reboot_delay", Kind::Any).default("0").doc("Seconds before the reboot."),
            opt("post_reboot_delay", Kind::Any).default("0").doc("Seconds to wait after the host is back."),
            opt("reboot_timeout", Kind::Any).default("600").doc("Seconds the host may take to come back."),
            opt("connect_timeout", Kind::Any).doc("Seconds each connection attempt may take."),
            opt("test_command", Kind::Str).default("whoami").doc("A command that must succeed once the host is back."),
            opt("msg", Kind::Str).default("Reboot initiated by Ansible").doc("The message the reboot gives logged-in users."),
            opt("search_paths", Kind::Any).default("[/sbin, /bin, /usr/sbin, /usr/bin, /usr/local/sbin]").doc("Where to look for the `shutdown` command."),
            opt("boot_time_command", Kind::Str).default("cat /proc/sys/kernel/random/boot_id").doc("The command whose output changes with every boot."),
            opt("reboot_command", Kind::Str).doc("The command that reboots."),
        ];
        S
    }
    async fn plan(&self, ctx: &StepCtx<'_>, args: &Json) -> Result<Plan, StepError> {
        if ctx.vars.get_attr("ansible_connection").ok().and_then(|v| v.as_str().map(str::to_string)).as_deref() == Some("local") {
            return Err(StepError::Failed { msg: "Running reboot with local connection would reboot the control node.".into(), result: json!({"rebooted": false, "elapsed": 0}) });
        }
        for k in ["pre_reboot_delay", "post_reboot_delay", "reboot_timeout", "connect_timeout"] {
            secs(args, k, 0)?;
        }
        let mut plan = Plan::ok();
        plan.changes.push(format!("reboot {} and wait until it is back", ctx.host));
        plan.result.insert("rebooted".into(), json!(true));
        plan.result.insert("elapsed".into(), json!(0));
        plan.result.insert("_args".into(), args.clone());
        plan.destructive = Some(crate::safety::Destructive { reason: format!("reboots {} (every service on it stops)", ctx.host), tier: Some(crate::safety::Tier::CriticalHitl), ..Default::default() });
        if ctx.check {
            plan.result.remove("_args");
        }
        Ok(plan)
    }
    async fn apply(&self, ctx: &StepCtx<'_>, mut plan: Plan) -> Result<Outcome, StepError> {
        let args = plan.result.remove("_args").unwrap_or(json!({}));
        let start = Instant::now();
        let s = |k: &str, d: u64| secs(&args, k, d);
        let (pre, post, timeout) = (s("pre_reboot_delay", 0)?, s("post_reboot_delay", 0)?, s("reboot_timeout", 600)?);
        let connect = Duration::from_secs(s("connect_timeout", 10)?);
        let text = |k: &str, d: &str| args.get(k).and_then(Json::as_str).map(str::to_string).unwrap_or_else(|| d.to_string());
        let boot_cmd = text("boot_time_command", "cat /proc/sys/kernel/random/boot_id");
        let test_cmd = text("test_command", "whoami");
        let before = ctx.run(Cmd::shell(boot_cmd.clone())).await?;
        if before.rc != 0 {
            return Err(StepError::Failed { msg: format!("failed to get host boot time info, rc: {}, stdout: {}, stderr: {}", before.rc, before.stdout_str(), before.stderr_str()), result: json!({"rebooted": false}) });
        }
        let boot_id = before.stdout_str().trim().to_string();
        let command = match args.get("reboot_command").and_then(Json::as_str) {
            Some(c) => c.to_string(),
            None => format!("shutdown -r {} \"{}\"", pre / 60, text("msg", "Reboot initiated by Ansible").replace('"', "\\\"")),
        };
        // The connection may drop before the command returns: that is the reboot starting.
        match tokio::time::timeout(Duration::from_secs(30), ctx.run(Cmd::shell(command.clone()).timeout(Some(20)))).await {
            Ok(Ok(out)) if out.rc != 0 && out.rc != 124 && out.rc != 255 => {
                return Err(StepError::Failed { msg: format!("Reboot command failed. Error was: '{}, {}'", out.stdout_str().trim(), out.stderr_str().trim()), result: json!({"rebooted": false, "start": start.elapsed().as_secs()}) });
            }
            _ => {}
        }
        let deadline = start + Duration::from_secs(timeout.max(1));
        let boot = Cmd::shell(boot_cmd);
        until_answers(ctx, deadline, connect, Duration::from_secs(1), &boot, |o| o.rc == 0 && o.stdout_str().trim() != boot_id && !o.stdout_str().trim().is_empty())
            .await
            .map_err(|e| StepError::Failed { msg: format!("Timed out waiting for last boot time check (timeout={timeout}): {e}"), result: json!({"rebooted": true, "elapsed": start.elapsed().as_secs()}) })?;
        until_answers(ctx, deadline, connect, Duration::from_secs(1), &Cmd::shell(test_cmd).become_user(ctx.become_user.clone()), |o| o.rc == 0)
            .await
            .map_err(|e| StepError::Failed { msg: format!("Timed out waiting for post-reboot test command (timeout={timeout}): {e}"), result: json!({"rebooted": true, "elapsed": start.elapsed().as_secs()}) })?;
        tokio::time::sleep(Duration::from_secs(post)).await;
        let mut result = plan.result;
        result.insert("elapsed".into(), json!(start.elapsed().as_secs()));
        Ok(Outcome { changed: true, result })
    }
}
