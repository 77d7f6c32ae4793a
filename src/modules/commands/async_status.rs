//! `async_status`: the state of a job `async: N` with `poll: 0` started (see
//! [`crate::modules::command`]): `finished` 0 while it runs; once it ended, the command's
//! result (`rc`, `stdout`, `stderr`, failed on a non-zero exit), as ansible-core's. `mode:
//! cleanup` removes the job's files. The job's files live in `~/.ansible_async/JID.d` of the
//! user the job ran as, so the task must become the same user, as in Ansible.

use async_trait::async_trait;
use documented::Documented;
use serde_json::{json, Value as Json};

use crate::modules::{opt, req, ArgSpec, Kind, Module, Plan, StepCtx, StepError};
use crate::transport::Cmd;

/// `async_status`: the state of a command started in the background (`async` with `poll: 0`), read
/// from its results file on the host; `mode: cleanup` removes the file.
///
/// Returns: `ansible_job_id`, `started`, `finished` (1 once the command ended), and once finished
/// the command's own result (`rc`, `stdout`, `stderr`, ...); `erased` with `cleanup`.
///
/// Check mode: reads the job as in a real run (it changes nothing).
#[derive(Documented)]
pub struct AsyncStatus;

/// A job id recover makes (`j` and digits, a dot, digits), so it is safe in a path.
pub fn valid_jid(jid: &str) -> bool {
    let mut parts = jid.strip_prefix('j').unwrap_or("").splitn(2, '.');
    let ok = |p: Option<&str>| p.is_some_and(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
    ok(parts.next()) && ok(parts.next())
}


#[async_trait]
impl Module for AsyncStatus {
    fn name(&self) -> &'static str {
        "async_status"
    }
    fn doc(&self) -> &'static str {
        Self::DOCS
    }
    fn spec(&self) -> &'static [ArgSpec] {
        const S: &[ArgSpec] = &[
            req("jid", Kind::Str).doc("The job id an `async` task registered (`ansible_job_id`)."),
            opt("mode", Kind::Str).default("status").doc("`status` reads the job; `cleanup` removes its results file."),
        ];
        S
    }
    async fn plan(&self, ctx: &StepCtx<'_>, args: &Json) -> Result<Plan, StepError> {
        let jid = args.get("jid").and_then(Json::as_str).unwrap_or_default().to_string();
        let mode = args.get("mode").and_then(Json::as_str).unwrap_or("status");
        if !matches!(mode, "status" | "cleanup") {
            return Err(StepError::failed(format!("async_status: mode must be status or cleanup, not {mode:?}")));
        }
        if !valid_jid(&jid) {
            return Err(StepError::failed(format!("could not find job: {jid:?} is not a job id this run started")));
        }
        let dir = crate::modules::commands::command::job_dir(&jid);
        if mode == "cleanup" {
            ctx.run_ok(Cmd::shell(format!("rm -rf -- {dir}"))).await?;
            return Ok(Plan::done(json!({"ansible_job_id": jid, "erased": format!("~/.ansible_async/{jid}.d"), "started": true, "finished": true})));
        }
        // One round trip: whether it exists, and when it ended, its rc and output.
        let script = format!(
            "d={dir}; [ -d \"$d\" ] || {{ echo missing; exit 0; }}; if [ -f \"$d/rc\" ]; then echo done; cat \"$d/rc\"; base64 -w0 \"$d/out\"; echo; base64 -w0 \"$d/err\"; echo; cat \"$d/cmd\" 2>/dev/null; else echo running; fi"
        );
        let out = ctx.run_ok(Cmd::shell(script).label(format!("async_status {jid}"))).await?;
        let text = out.stdout_str();
        let mut lines = text.lines();
        match lines.next() {
            Some("missing") if ctx.check => {
                let mut p = Plan::ok();
                p.skipped = Some(format!("job {jid} was not started (a dry-run starts none)"));
                Ok(p)
            }
            Some("missing") | None => Err(StepError::Failed { msg: format!("could not find job {jid}"), result: json!({"ansible_job_id": jid, "started": true, "finished": true}) }),
            Some("running") => Ok(Plan::done(json!({"ansible_job_id": jid, "started": true, "finished": false, "changed": false}))),
            Some(_) => {
                use base64::Engine as _;
                let rc: i32 = lines.next().unwrap_or("").trim().parse().unwrap_or(-1);
                let dec = |l: Option<&str>| base64::engine::general_purpose::STANDARD.decode(l.unwrap_or("").trim()).unwrap_or_default();
                let stdout = dec(lines.next());
                let stderr = dec(lines.next());
                let cmd: String = lines.collect::<Vec<_>>().join("\n");
                let o = crate::transport::Output { rc, stdout, stderr };
                let mut r = crate::modules::commands::command::result_of(&o, &cmd);
                r.insert("ansible_job_id".into(), json!(jid));
                r.insert("started".into(), json!(true));
                r.insert("finished".into(), json!(true));
                // The job changed what its command changed: as ansible-core, a finished command job reports changed.
                r.insert("changed".into(), json!(true));
                let mut p = Plan::done(Json::Object(r));
                p.changes.push(format!("job {jid} ended with rc {rc}"));
                Ok(p)
            }
        }
    }
}
