//! `wait_for_connection`: wait until the host answers again (a command over a new connection
//! when the old one is gone), as ansible-core's action: `delay` first, then a try every
//! `sleep` seconds, each within `connect_timeout`, for up to `timeout`. Skipped in check mode.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use documented::Documented;
use serde_json::{json, Value as Json};

use crate::modules::{opt, ArgSpec, Kind, Module, Plan, StepCtx, StepError};
use crate::transport::Cmd;

/// `wait_for_connection`: waits until the host can be reached again (after a reboot, a network
/// change), up to `timeout`.
///
/// Returns: `elapsed` (seconds).
///
/// Check mode: waits as in a real run.
#[derive(Documented)]
pub struct WaitForConnection;

/// A whole number of seconds (`5`, `"5"`), or the default.
pub fn secs(args: &Json, k: &str, default: u64) -> Result<u64, StepError> {
    match args.get(k) {
        None | Some(Json::Null) => Ok(default),
        Some(Json::Number(n)) => n.as_u64().ok_or_else(|| StepError::failed(format!("{k} must be a whole number of seconds, got {n}"))),
        Some(Json::String(s)) => s.trim().parse().map_err(|_| StepError::failed(format!("{k} must be a whole number of seconds, got {s:?}"))),
        Some(other) => Err(StepError::failed(format!("{k} must be a whole number of seconds, got {other}"))),
    }
}

/// Tries a command on the host, reconnecting when the connection is gone, until it answers or
/// `deadline`; the error of the last try when it never did.
pub async fn until_answers(ctx: &StepCtx<'_>, deadline: Instant, connect_timeout: Duration, sleep: Duration, test: &Cmd, check: impl Fn(&crate::transport::Output) -> bool) -> Result<(), String> {
    let mut last;
    loop {
        match tokio::time::timeout(connect_timeout.max(Duration::from_secs(1)) * 2, ctx.conn.exec(test)).await {
            Ok(Ok(out)) if check(&out) => return Ok(()),
            Ok(Ok(out)) => last = format!("`{}` exited {}: {}", test.display(), out.rc, out.stderr_str().trim()),
            Ok(Err(e)) => {
                last = e.to_string();
                if let Err(e) = ctx.conn.reconnect(connect_timeout).await {
                    last = e.to_string();
                }
            }
            Err(_) => {
                last = format!("no answer within {}s", connect_timeout.as_secs());
                let _ = ctx.conn.reconnect(connect_timeout).await;
            }
        }
        if Instant::now() + sleep >= deadline {
            return Err(last);
        }
        tokio::time::sleep(sleep).await;
    }
}

#[async_trait]
impl Module for WaitForConnection {
    fn name(&self) -> &'static str {
        "wait_for_connection"
    }
    fn doc(&self) -> &'static str {
        Self::DOCS
    }
    fn spec(&self) -> &'static [ArgSpec] {
        const S: &[ArgSpec] = &[
            opt("connect_timeout", Kind::Any).default("5").doc("Seconds each connection attempt may take."),
            opt("delay", Kind::Any).default("0").doc("Seconds to wait before the first attempt."),
            opt("sleep", Kind::Any).default("1").doc("Seconds between attempts."),
            opt("timeout", Kind::Any).default("600").doc("Seconds to keep trying before failing."),
        ];
        S
    }
    async fn plan(&self, ctx: &StepCtx<'_>, args: &Json) -> Result<Plan, StepError> {
        if ctx.check {
            return Ok(Plan { skipped: Some("wait_for_connection does not run in check mode".into()), ..Plan::ok() });
        }
        let (connect_timeout, delay, sleep, timeout) = (secs(args, "connect_timeout", 5)?, secs(args, "delay", 0)?, secs(args, "sleep", 1)?, secs(args, "timeout", 600)?);
        let start = Instant::now();
        tokio::time::sleep(Duration::from_secs(delay)).await;
        let deadline = start + Duration::from_secs(timeout);
        let test = Cmd::argv(["true"]);
        if let Err(e) = until_answers(ctx, deadline, Duration::from_secs(connect_timeout), Duration::from_secs(sleep), &test, |o| o.rc == 0).await {
            return Err(StepError::Failed { msg: format!("timed out waiting for ping module test: {e}"), result: json!({"elapsed": start.elapsed().as_secs()}) });
        }
        Ok(Plan::done(json!({ "elapsed": start.elapsed().as_secs() })))
    }
}
