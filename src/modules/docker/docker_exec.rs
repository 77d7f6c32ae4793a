//! `docker_container_exec` (community.docker.docker_container_exec): runs a command inside a
//! running container on the host, through the host's `docker exec`: `argv` or `command` (split
//! as a shell would, no shell run), `stdin` (a newline added unless `stdin_add_newline: false`),
//! `chdir`, `user`, `env`, `detach`. As the collection's module: it is always changed, a
//! non-zero `rc` is returned, not a failure, and it does not run in check mode unless the task
//! is `read_only: true` (a diagnostic query).

use async_trait::async_trait;
use documented::Documented;
use serde::Deserialize;
use serde_json::{json, Value as Json};

use crate::modules::{de, opt, req, typed, ArgSpec, Kind, Module, Outcome, Plan, StepCtx, StepError};
use crate::transport::Cmd;

/// `docker_container_exec`: a command run in a running container (as community.docker's module runs
/// it).
///
/// Returns: `rc`, `stdout`, `stderr`, `stdout_lines`, `stderr_lines`; `exec_id` with `detach`.
///
/// Check mode: skipped (it changes the container as a command may).
#[derive(Documented)]
pub struct DockerContainerExec;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    container: String,
    #[serde(default, deserialize_with = "de::list_loose")]
    argv: Vec<String>,
    command: Option<String>,
    chdir: Option<String>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    detach: Option<bool>,
    user: Option<String>,
    stdin: Option<String>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    stdin_add_newline: Option<bool>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    strip_empty_ends: Option<bool>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    tty: Option<bool>,
    env: Option<serde_json::Map<String, Json>>,
}

fn build(a: &Args) -> Result<(Cmd, Vec<String>), StepError> {
    let words = match (&a.command, a.argv.is_empty()) {
        (Some(_), false) => return Err(StepError::failed("docker_container_exec: parameters are mutually exclusive: argv|command")),
        (None, true) => return Err(StepError::failed("docker_container_exec: one of the following is required: argv, command")),
        (Some(c), true) => shell_words::split(c).map_err(|e| StepError::failed(format!("docker_container_exec: cannot split {c:?} into words: {e}")))?,
        (None, false) => a.argv.clone(),
    };
    if a.detach == Some(true) && a.stdin.is_some() {
        return Err(StepError::failed("docker_container_exec: If detach=true, stdin cannot be provided."));
    }
    if a.tty == Some(true) {
        return Err(StepError::failed("docker_container_exec: tty: true is not supported by recover (no terminal on the host side)"));
    }
    let mut argv = vec!["docker".to_string(), "exec".into()];
    if a.stdin.is_some() {
        argv.push("-i".into());
    }
    if a.detach == Some(true) {
        argv.push("-d".into());
    }
    if let Some(u) = &a.user {
        argv.extend(["-u".into(), u.clone()]);
    }
    if let Some(d) = &a.chdir {
        argv.extend(["-w".into(), d.clone()]);
    }
    for (k, v) in a.env.iter().flatten() {
        let v = match v {
            Json::String(s) => s.clone(),
            other => other.to_string(),
        };
        argv.extend(["-e".into(), format!("{k}={v}")]);
    }
    argv.push(a.container.clone());
    argv.extend(words.iter().cloned());
    let mut cmd = Cmd::argv(argv);
    if let Some(s) = &a.stdin {
        let mut data = s.clone().into_bytes();
        if a.stdin_add_newline != Some(false) {
            data.push(b'\n');
        }
        cmd = cmd.stdin(data);
    }
    Ok((cmd, words))
}

fn result(a: &Args, out: &crate::transport::Output) -> Result<serde_json::Map<String, Json>, StepError> {
    let (mut stdout, mut stderr) = (out.stdout_str(), out.stderr_str());
    // docker's own refusals (exit 125-127 with its message) are the module's failures.
    if out.rc >= 125 && stderr.contains("No such container") {
        return Err(StepError::failed(format!("Could not find container \"{}\"", a.container)));
    }
    if out.rc >= 125 && stderr.contains("is not running") {
        return Err(StepError::failed(format!("Container \"{}\" is not running: {}", a.container, stderr.trim())));
    }
    if a.strip_empty_ends != Some(false) {
        stdout = stdout.trim_end_matches(['\r', '\n']).to_string();
        stderr = stderr.trim_end_matches(['\r', '\n']).to_string();
    }
    if a.detach == Some(true) {
        return Ok(json!({"exec_id": stdout.trim()}).as_object().cloned().unwrap_or_default());
    }
    Ok(json!({
        "rc": out.rc, "stdout": stdout, "stderr": stderr,
        "stdout_lines": stdout.lines().collect::<Vec<_>>(), "stderr_lines": stderr.lines().collect::<Vec<_>>(),
    })
    .as_object()
    .cloned()
    .unwrap_or_default())
}

#[async_trait]
impl Module for DockerContainerExec {
    fn name(&self) -> &'static str {
        "docker_container_exec"
    }
    fn doc(&self) -> &'static str {
        Self::DOCS
    }
    fn spec(&self) -> &'static [ArgSpec] {
        const S: &[ArgSpec] = &[
            req("container", Kind::Str).doc("The running container to run the command in."),
            opt("argv", Kind::List).doc("The command as a list of words."),
            opt("command", Kind::Str).doc("The command as a line, split into words as a shell would."),
            opt("chdir", Kind::Str).doc("The folder in the container to run the command in."),
            opt("detach", Kind::Bool).default("false").doc("Start the command and return without waiting for it."),
            opt("user", Kind::Str).doc("The user to run the command as in the container."),
            opt("stdin", Kind::Str).doc("Text given to the command on its standard input."),
            opt("stdin_add_newline", Kind::Bool).default("true").doc("Add a newline after `stdin`."),
            opt("strip_empty_ends", Kind::Bool).default("true").doc("Strip empty lines from the end of stdout and stderr."),
            opt("tty", Kind::Bool).default("false").doc("Give the command a terminal."),
            opt("env", Kind::Map).doc("Environment variables for the command."),
        ];
        S
    }
    async fn plan(&self, ctx: &StepCtx<'_>, args: &Json) -> Result<Plan, StepError> {
        let a: Args = typed("docker_container_exec", args)?;
        let (cmd, words) = build(&a)?;
        if ctx.task.read_only {
            let out = ctx.run(cmd.clone()).await?;
            let mut plan = Plan::done(Json::Object(result(&a, &out)?));
            plan.note = Some(format!("ran (read-only) in {}: {}", a.container, crate::transport::quote::join(&words)));
            return Ok(plan);
        }
        if ctx.check {
            return Ok(Plan { skipped: Some("check mode is not supported for docker_container_exec".into()), ..Plan::ok() });
        }
        let mut plan = Plan::ok();
        plan.changes.push(format!("run in container {}: {}", a.container, crate::transport::quote::join(&words)));
        plan.commands.push(cmd);
        plan.result.insert("_args".into(), args.clone());
        Ok(plan)
    }
    async fn apply(&self, ctx: &StepCtx<'_>, mut plan: Plan) -> Result<Outcome, StepError> {
        let args = plan.result.remove("_args").unwrap_or_default();
        let a: Args = typed("docker_container_exec", &args)?;
        let mut res = plan.result;
        for cmd in plan.commands {
            let out = ctx.run(cmd).await?;
            res.extend(result(&a, &out)?);
        }
        Ok(Outcome { changed: true, result: res })
    }
}
