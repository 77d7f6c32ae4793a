//! `wait_for`: until a TCP port on the host answers (or stops), a path
//! exists (or is gone), or a file matches `search_regex`. Polls from here,
//! one cheap probe a time over the open connection, until `timeout`.
//! In dry-run it is only described: what it waits for usually comes from an
//! earlier step that dry-run did not run.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use documented::Documented;
use serde::Deserialize;
use serde_json::{json, Value as Json};

use crate::modules::{de, opt, typed, ArgSpec, Kind, Module, Outcome, Plan, StepCtx, StepError};
use crate::transport::{quote, Cmd};

/// `wait_for`: waits until a port is open (or closed, or drained) or a file exists (or is gone, or
/// holds a pattern), up to `timeout`.
///
/// Returns: `elapsed` (seconds), `state`, `path` or `port`, `match_groups` with `search_regex`.
///
/// Check mode: skipped, as ansible-core does (it does not support check mode); the note says what
/// it would wait for.
#[derive(Documented)]
pub struct WaitFor;

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct Args {
    host: Option<String>,
    #[serde(default, deserialize_with = "de::u64_loose")]
    port: Option<u64>,
    path: Option<String>,
    search_regex: Option<String>,
    state: Option<String>,
    #[serde(default, deserialize_with = "de::u64_loose")]
    timeout: Option<u64>,
    #[serde(default, deserialize_with = "de::u64_loose")]
    delay: Option<u64>,
    #[serde(default, deserialize_with = "de::u64_loose")]
    sleep: Option<u64>,
    msg: Option<String>,
}

impl Args {
    fn probe(&self) -> Result<(Cmd, String), StepError> {
        let want_up = !matches!(self.state.as_deref(), Some("stopped") | Some("absent"));
        if let Some(port) = self.port {
            let host = self.host.clone().unwrap_or_else(|| "127.0.0.1".into());
            let script = format!("exec 3<>/dev/tcp/{}/{port}", quote::quote(&host));
            let cmd = Cmd::argv(["timeout", "2", "bash", "-c", script.as_str()]);
            let what = format!("port {host}:{port} to {}", if want_up { "accept connections" } else { "close" });
            return Ok((cmd, what));
        }
        if let Some(path) = &self.path {
            if let Some(re) = &self.search_regex {
                // The file is read and searched here, with Python's regular expressions
                // (named groups, multiline), as ansible-core's wait_for searches it.
                let cmd = Cmd::argv(["cat", "--", path.as_str()]);
                return Ok((cmd, format!("{path} to match /{re}/")));
            }
            let what = format!("{path} to {}", if want_up { "exist" } else { "be absent" });
            return Ok((Cmd::argv(["test", "-e", path.as_str()]), what));
        }
        Err(StepError::failed("wait_for needs `port` or `path`"))
    }
}

#[async_trait]
impl Module for WaitFor {
    fn name(&self) -> &'static str {
        "wait_for"
    }
    fn doc(&self) -> &'static str {
        Self::DOCS
    }
    fn spec(&self) -> &'static [ArgSpec] {
        const S: &[ArgSpec] = &[
            opt("host", Kind::Str).default("127.0.0.1").doc("The address to connect to with `port`."),
            opt("port", Kind::Int).doc("A TCP port to wait for (open, or closed/drained with `state`)."),
            opt("path", Kind::Str).doc("A file to wait for (present, absent, or holding `search_regex`)."),
            opt("search_regex", Kind::Str).doc("A regular expression the file (or the port's first answer) must match."),
            opt("state", Kind::Str).default("started").doc("`started`/`present`, `stopped`/`absent`, or `drained` (no active connections)."),
            opt("timeout", Kind::Int).default("300").doc("Seconds to wait before failing."),
            opt("delay", Kind::Int).default("0").doc("Seconds to wait before the first check."),
            opt("sleep", Kind::Int).default("1").doc("Seconds between checks."),
            opt("msg", Kind::Str).doc("The failure message when the wait times out."),
        ];
        S
    }
    async fn plan(&self, ctx: &StepCtx<'_>, args: &Json) -> Result<Plan, StepError> {
        let a: Args = typed("wait_for", args)?;
        // Neither a port nor a path: ansible-core's wait_for sleeps `timeout` seconds.
        let what = if a.port.is_none() && a.path.is_none() { format!("{}s (a plain sleep)", a.timeout.unwrap_or(300)) } else { a.probe()?.1 };
        // ansible-core's wait_for does not support check mode: the step is skipped.
        if ctx.check {
            return Ok(Plan { skipped: Some("remote module (wait_for) does not support check mode".into()), note: Some(format!("would wait up to {}s for {what}", a.timeout.unwrap_or(300))), ..Plan::ok() });
        }
        let mut plan = Plan::ok();
        plan.run_anyway = true;
        plan.note = Some(format!("would wait up to {}s for {what}", a.timeout.unwrap_or(300)));
        plan.result.insert("args".into(), args.clone());
        Ok(plan)
    }
    async fn apply(&self, ctx: &StepCtx<'_>, plan: Plan) -> Result<Outcome, StepError> {
        let a: Args = typed("wait_for", plan.result.get("args").unwrap_or(&Json::Null))?;
        if a.port.is_none() && a.path.is_none() {
            // The delay, then the timeout: ansible-core counts both as elapsed.
            let secs = a.delay.unwrap_or(0) + a.timeout.unwrap_or(300);
            tokio::time::sleep(Duration::from_secs(secs)).await;
            let result = json!({"elapsed": secs, "state": a.state.clone().unwrap_or_else(|| "started".into()), "path": null, "port": null, "search_regex": null, "match_groups": [], "match_groupdict": {}});
            return Ok(Outcome { changed: false, result: result.as_object().cloned().unwrap_or_default() });
        }
        let (cmd, what) = a.probe()?;
        let want_up = !matches!(a.state.as_deref(), Some("stopped") | Some("absent"));
        // As ansible-core: the deadline and `elapsed` count from before the delay.
        let start = Instant::now();
        tokio::time::sleep(Duration::from_secs(a.delay.unwrap_or(0))).await;
        let timeout = Duration::from_secs(a.timeout.unwrap_or(300));
        let search = match (&a.path, &a.search_regex) {
            (Some(_), Some(re)) => Some(crate::pyre::compile_flags(re, "m").map_err(|e| StepError::failed(format!("wait_for: search_regex: {e}")))?),
            _ => None,
        };
        loop {
            let out = ctx.run(cmd.clone()).await?;
            let mut found = None;
            let up = match &search {
                Some(re) => out.ok() && {
                    found = re.captures(&out.stdout).map(|c| c.groups());
                    found.is_some()
                },
                None => out.ok(),
            };
            if up == want_up {
                let elapsed = start.elapsed().as_secs_f64();
                let mut result = serde_json::Map::new();
                // What ansible-core's wait_for returns.
                result.insert("elapsed".into(), json!(elapsed.floor() as u64));
                result.insert("path".into(), json!(a.path));
                result.insert("port".into(), json!(a.port));
                result.insert("search_regex".into(), json!(a.search_regex));
                result.insert("state".into(), json!(a.state.clone().unwrap_or_else(|| "started".into())));
                let (groups, named) = found.unwrap_or_default();
                result.insert("match_groups".into(), json!(groups));
                result.insert("match_groupdict".into(), Json::Object(named.into_iter().map(|(k, v)| (k, json!(v))).collect()));
                return Ok(Outcome { changed: false, result });
            }
            if start.elapsed() >= timeout {
                let msg = a.msg.clone().unwrap_or_else(|| format!("host {}: timed out after {}s waiting for {what}", ctx.host, timeout.as_secs()));
                // ansible-core's words for the registered result.
                let host = a.host.clone().unwrap_or_else(|| "127.0.0.1".into());
                let said = a.msg.clone().unwrap_or_else(|| match (a.port, &a.path, &a.search_regex) {
                    (Some(p), _, _) if want_up => format!("Timeout when waiting for {host}:{p}"),
                    (Some(p), _, _) => format!("Timeout when waiting for {host}:{p} to stop."),
                    (None, Some(path), Some(re)) => format!("Timeout when waiting for search string {re} in {path}"),
                    (None, Some(path), None) if want_up => format!("Timeout when waiting for file {path}"),
                    (None, Some(path), None) => format!("Timeout when waiting for {path} to be absent."),
                    _ => msg.clone(),
                });
                return Err(StepError::Failed { msg, result: json!({ "elapsed": start.elapsed().as_secs(), "msg": said }) });
            }
            tokio::time::sleep(Duration::from_millis(a.sleep.map_or(250, |s| s * 1000).min(1000))).await;
        }
    }
}
