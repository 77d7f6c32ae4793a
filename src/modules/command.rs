//! `command` (an argv, no shell) and `shell` (a script). Both honour
//! `creates`/`removes`. In dry-run they are shown as "would run: ..." and not
//! run, unless the task is `read_only: true` (a diagnostic), which runs in
//! dry-run too and never counts as a change.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Value as Json};

use super::{opt, typed, ArgSpec, Kind, Module, Outcome, Plan, StepCtx, StepError};
use crate::transport::{quote, Cmd};

/// The `command` or the `shell` module.
pub struct CommandLike {
    name: &'static str,
    shell: bool,
}

pub static COMMAND: CommandLike = CommandLike { name: "command", shell: false };
pub static SHELL: CommandLike = CommandLike { name: "shell", shell: true };

const SPEC: &[ArgSpec] = &[
    opt("cmd", Kind::Str),
    opt("argv", Kind::List),
    opt("creates", Kind::Str),
    opt("removes", Kind::Str),
    opt("chdir", Kind::Str),
    opt("stdin", Kind::Str),
    opt("executable", Kind::Str),
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(default, alias = "_raw_params")]
    cmd: Option<String>,
    #[serde(default)]
    argv: Option<Vec<String>>,
    creates: Option<String>,
    removes: Option<String>,
    chdir: Option<String>,
    stdin: Option<String>,
    executable: Option<String>,
}

fn build(module: &str, args: &Json) -> Result<(Cmd, Args), StepError> {
    let a: Args = typed(module, args)?;
    let mut script = match (module, &a.argv, &a.cmd) {
        ("command", Some(argv), _) if !argv.is_empty() => quote::join(argv),
        ("command", Some(_), _) => return Err(StepError::failed("command: nothing to run")),
        ("command", None, Some(c)) => {
            let words = shell_words::split(c).map_err(|e| StepError::failed(format!("command: cannot split {c:?} into words: {e}")))?;
            if words.is_empty() {
                return Err(StepError::failed("command: nothing to run"));
            }
            quote::join(&words)
        }
        ("shell", _, Some(c)) => c.clone(),
        _ => return Err(StepError::failed(format!("{module}: give the command as `{module}: ...` or `cmd:`"))),
    };
    if let Some(exe) = a.executable.as_ref().filter(|_| module == "shell") {
        script = format!("{} -c {}", quote::quote(exe), quote::quote(&script));
    }
    if let Some(dir) = &a.chdir {
        script = format!("cd {} && {script}", quote::quote(dir));
    }
    let mut cmd = Cmd::shell(script);
    if module == "shell" {
        cmd = cmd.own_shell();
    }
    if let Some(input) = &a.stdin {
        cmd = cmd.stdin(format!("{input}\n").into_bytes());
    }
    Ok((cmd, a))
}

/// Ansible's command result.
pub fn result_of(out: &crate::transport::Output, cmd: &str) -> serde_json::Map<String, Json> {
    let stdout = out.stdout_str();
    let stderr = out.stderr_str();
    // As Ansible's command module: trailing CR and LF characters are dropped (all of them).
    let trim = |s: &str| s.trim_end_matches(['\r', '\n']).to_string();
    let v = json!({
        "cmd": cmd, "rc": out.rc,
        "stdout": trim(&stdout), "stderr": trim(&stderr),
        "stdout_lines": stdout.lines().collect::<Vec<_>>(), "stderr_lines": stderr.lines().collect::<Vec<_>>(),
        "failed": out.rc != 0,
        "msg": if out.rc != 0 { format!("non-zero return code {}", out.rc) } else { String::new() },
    });
    v.as_object().cloned().unwrap_or_default()
}

async fn plan(module: &str, ctx: &StepCtx<'_>, args: &Json) -> Result<Plan, StepError> {
    let (cmd, a) = build(module, args)?;
    if let Some(p) = &a.creates {
        if ctx.run(Cmd::argv(["test", "-e", p])).await?.ok() {
            let mut plan = Plan::done(json!({"msg": format!("skipped, since {p} exists"), "rc": 0}));
            plan.note = Some(format!("{p} exists"));
            return Ok(plan);
        }
    }
    if let Some(p) = &a.removes {
        if !ctx.run(Cmd::argv(["test", "-e", p])).await?.ok() {
            let mut plan = Plan::done(json!({"msg": format!("skipped, since {p} does not exist"), "rc": 0}));
            plan.note = Some(format!("{p} does not exist"));
            return Ok(plan);
        }
    }
    if ctx.task.read_only {
        let out = ctx.run(cmd.clone()).await?;
        let mut plan = Plan::done(Json::Object(result_of(&out, &cmd.line())));
        plan.note = Some(format!("ran (read-only): {}", cmd.line()));
        return Ok(plan);
    }
    let mut plan = Plan::ok();
    plan.changes.push(format!("run: {}", cmd.display()));
    plan.commands.push(cmd);
    Ok(plan)
}

async fn apply(ctx: &StepCtx<'_>, plan: Plan) -> Result<Outcome, StepError> {
    let mut result = plan.result;
    for cmd in plan.commands {
        let out = ctx.run(cmd.clone()).await?;
        // `timeout` exits 124 (or 137 after -k) when it killed the command.
        if let Some(t) = ctx.timeout.filter(|_| out.rc == 124 || out.rc == 137) {
            return Err(StepError::Failed {
                msg: format!("host {}: `{}` timed out after {t}s and was killed", ctx.host, cmd.display()),
                result: json!({"rc": out.rc, "timed_out": true}),
            });
        }
        result.extend(result_of(&out, &cmd.line()));
        if out.rc != 0 {
            break;
        }
    }
    Ok(Outcome { changed: true, result })
}

/// `command` and `shell` differ only in their name and in how their string is
/// rendered (a shell string quotes every value it prints).
#[async_trait]
impl Module for CommandLike {
    fn name(&self) -> &'static str {
        self.name
    }
    fn spec(&self) -> &'static [ArgSpec] {
        SPEC
    }
    fn free_form(&self) -> bool {
        true
    }
    fn shell_args(&self) -> &'static [&'static str] {
        if self.shell { &["_raw_params", "cmd"] } else { &[] }
    }
    async fn plan(&self, ctx: &StepCtx<'_>, args: &Json) -> Result<Plan, StepError> {
        plan(self.name, ctx, args).await
    }
    async fn apply(&self, ctx: &StepCtx<'_>, plan: Plan) -> Result<Outcome, StepError> {
        apply(ctx, plan).await
    }
}
