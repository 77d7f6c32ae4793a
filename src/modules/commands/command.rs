//! `command` (an argv, no shell) and `shell` (a script). Both honour
//! `creates`/`removes`. In dry-run they are shown as "would run: ..." and not
//! run, unless the task is `read_only: true` (a diagnostic), which runs in
//! dry-run too and never counts as a change.

use async_trait::async_trait;
use documented::Documented;
use serde::Deserialize;
use serde_json::{json, Value as Json};

use crate::modules::{opt, typed, ArgSpec, Kind, Module, Outcome, Plan, StepCtx, StepError};
use crate::transport::{quote, Cmd};

/// `command` and `shell`: a command on the host. `command` runs the words as they are (no shell: no
/// pipes, redirections or `$VARS` but its own); `shell` gives the line to `/bin/sh` (or
/// `executable`). `creates`/`removes` skip it by a path; `async` starts it in the background.
///
/// Returns: `cmd`, `rc`, `stdout`, `stderr`, `stdout_lines`, `stderr_lines`, `start`, `end`,
/// `delta`, `msg`; with `async` and `poll: 0`, `ansible_job_id`, `started`, `finished`,
/// `results_file`.
///
/// Check mode: not run (skipped) unless `creates` or `removes` decide it, as in ansible-core; a
/// task with `check_mode: false` runs.
#[derive(Documented)]
pub struct CommandLike {
    name: &'static str,
    shell: bool,
}

pub static COMMAND: CommandLike = CommandLike { name: "command", shell: false };
pub static SHELL: CommandLike = CommandLike { name: "shell", shell: true };

const SPEC: &[ArgSpec] = &[
    opt("cmd", Kind::Str).doc("The command line, split into words as a shell would (no pipes or redirections with `command`)."),
    opt("argv", Kind::List).doc("The command as a list of words, given to the program as they are."),
    opt("creates", Kind::Str).doc("A path: when it exists, the command does not run."),
    opt("removes", Kind::Str).doc("A path: when it does not exist, the command does not run."),
    opt("chdir", Kind::Str).doc("The folder to run the command in."),
    opt("stdin", Kind::Str).doc("Text given to the command on its standard input."),
    opt("executable", Kind::Str).doc("`shell`: the shell to run the line with (`/bin/sh` otherwise)."),
    opt("stdin_add_newline", Kind::Bool).default("true").doc("Add a newline after `stdin`."),
    opt("strip_empty_ends", Kind::Bool).default("true").doc("Strip empty lines from the end of stdout and stderr."),
    opt("expand_argument_vars", Kind::Bool).default("true").doc("Expand `$VARS` in the arguments of `command` as the host environment has them."),
    opt("free_form", Kind::Str).doc("The command line written after the module name (`command: ls -l`)."),
    // ansible-core before 2.14 took `warn` (whether to warn about commands a module does
    // better); it only ever changed warnings, so a role written for it runs unchanged.
    opt("warn", Kind::Bool).doc("Accepted for roles written for ansible-core before 2.14; has no effect."),
];

/// One word of `command`, quoted for the shell so that only what Python's
/// `os.path.expanduser(os.path.expandvars(word))` expands is expanded: `$NAME` and `${NAME}`
/// (left as written when unset), and a leading `~` or `~user`. No globbing, no splitting,
/// no command substitution.
pub fn expand_word(word: &str) -> String {
    let mut out = String::new();
    let mut rest = word;
    // The tilde prefix, unquoted (the shell expands it only so).
    if let Some(after) = word.strip_prefix('~') {
        let end = after.find('/').unwrap_or(after.len());
        let user = &after[..end];
        if user.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) {
            out.push('~');
            out.push_str(user);
            rest = &after[end..];
        }
    }
    let mut lit = String::new();
    let flush = |lit: &mut String, out: &mut String| {
        if !lit.is_empty() {
            out.push_str(&quote::quote(lit));
            lit.clear();
        }
    };
    let b: Vec<char> = rest.chars().collect();
    let mut i = 0;
    while i < b.len() {
        if b[i] == '$' {
            let name_at = |j: usize| -> usize {
                let mut k = j;
                while k < b.len() && (b[k].is_alphanumeric() || b[k] == '_') {
                    k += 1;
                }
                k
            };
            if b.get(i + 1) == Some(&'{') {
                if let Some(close) = b[i + 2..].iter().position(|c| *c == '}').map(|p| p + i + 2) {
                    let name: String = b[i + 2..close].iter().collect();
                    if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') && !name.starts_with(|c: char| c.is_ascii_digit()) {
                        flush(&mut lit, &mut out);
                        // The default holds a `}`: made by a command substitution, run only when unset.
                        out.push_str(&format!("\"${{{name}-$(printf %s '${{{name}}}')}}\""));
                        i = close + 1;
                        continue;
                    }
                }
            } else {
                let end = name_at(i + 1);
                let name: String = b[i + 1..end].iter().collect();
                if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') && !name.starts_with(|c: char| c.is_ascii_digit()) {
                    flush(&mut lit, &mut out);
                    out.push_str(&format!("\"${{{name}-\\${name}}}\""));
                    i = end;
                    continue;
                }
            }
        }
        lit.push(b[i]);
        i += 1;
    }
    flush(&mut lit, &mut out);
    if out.is_empty() {
        out.push_str("''");
    }
    out
}

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
    #[serde(default, deserialize_with = "crate::modules::de::bool_loose")]
    stdin_add_newline: Option<bool>,
    #[serde(default, deserialize_with = "crate::modules::de::bool_loose")]
    strip_empty_ends: Option<bool>,
    #[serde(default, deserialize_with = "crate::modules::de::bool_loose")]
    expand_argument_vars: Option<bool>,
    free_form: Option<String>,
    #[serde(default, deserialize_with = "crate::modules::de::bool_loose")]
    warn: Option<bool>,
}

fn build(module: &str, args: &Json) -> Result<(Cmd, Args), StepError> {
    let a: Args = typed(module, args)?;
    let _ = (&a.free_form, a.strip_empty_ends, a.warn);
    let expand = a.expand_argument_vars.unwrap_or(true);
    let join = |words: &[String]| if expand { words.iter().map(|w| expand_word(w)).collect::<Vec<_>>().join(" ") } else { quote::join(words) };
    let mut script = match (module, &a.argv, &a.cmd) {
        ("command", Some(argv), _) if !argv.is_empty() => join(argv),
        ("command", Some(_), _) => return Err(StepError::failed("command: nothing to run")),
        ("command", None, Some(c)) => {
            let words = shell_words::split(c).map_err(|e| StepError::failed(format!("command: cannot split {c:?} into words: {e}")))?;
            if words.is_empty() {
                return Err(StepError::failed("command: nothing to run"));
            }
            join(&words)
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
        let nl = if a.stdin_add_newline.unwrap_or(true) { "\n" } else { "" };
        cmd = cmd.stdin(format!("{input}{nl}").into_bytes());
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

/// ansible-core's `cmd` field: the argv of `command`, the string of `shell`.
fn cmd_field(module: &str, args: &Json) -> Json {
    let a = args.as_object();
    let get = |k: &str| a.and_then(|m| m.get(k)).filter(|v| !v.is_null());
    if let Some(argv) = get("argv").filter(|_| module == "command") {
        return argv.clone();
    }
    match get("cmd").or_else(|| get("_raw_params")).and_then(Json::as_str) {
        Some(c) if module == "command" => shell_words::split(c).map(|w| json!(w)).unwrap_or_else(|_| json!(c)),
        Some(c) => json!(c),
        None => Json::Null,
    }
}

/// The result ansible-core's command module gives when it does not run the command: `creates`
/// or `removes` said so, or check mode.
fn not_run_result(cmd: Json, msg: String, stdout: &str) -> Json {
    json!({
        "cmd": cmd, "rc": 0, "msg": msg,
        "stdout": stdout, "stderr": "", "stdout_lines": stdout.lines().collect::<Vec<_>>(), "stderr_lines": [],
        "start": null, "end": null, "delta": null,
    })
}

async fn plan(module: &str, ctx: &StepCtx<'_>, args: &Json) -> Result<Plan, StepError> {
    let (cmd, a) = build(module, args)?;
    let shoulda = if ctx.check && !ctx.task.read_only { "Would" } else { "Did" };
    // As ansible-core: `creates`/`removes` are globs, matched on the host.
    let exists = |p: &str| Cmd::shell(format!("for f in {}; do [ -e \"$f\" ] || [ -L \"$f\" ] && exit 0; done; exit 1", glob_words(p)));
    if let Some(p) = &a.creates {
        if ctx.run(exists(p)).await?.ok() {
            let mut plan = Plan::done(not_run_result(cmd_field(module, args), format!("{shoulda} not run command since '{p}' exists"), &format!("skipped, since {p} exists")));
            plan.note = Some(format!("{p} exists"));
            return Ok(plan);
        }
    }
    if let Some(p) = &a.removes {
        if !ctx.run(exists(p)).await?.ok() {
            let mut plan = Plan::done(not_run_result(cmd_field(module, args), format!("{shoulda} not run command since '{p}' does not exist"), &format!("skipped, since {p} does not exist")));
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
    if ctx.task.poll_zero && ctx.task.async_secs.is_some() {
        plan.changes.push(format!("start in the background: {}", cmd.display()));
        if ctx.check {
            // A job id for `async_status` to find no job under (it is skipped in a dry-run).
            plan.result.insert("ansible_job_id".into(), json!("j0.0"));
            plan.result.insert("started".into(), json!(false));
            plan.result.insert("finished".into(), json!(false));
        }
    } else {
        plan.changes.push(format!("run: {}", cmd.display()));
        if ctx.check {
            // ansible-core's check mode: the command is not run; it is skipped unless `creates`
            // or `removes` was given (then it would change), with an empty output.
            if let Json::Object(m) = not_run_result(cmd_field(module, args), "Command would have run if not in check mode".into(), "") {
                plan.result = m;
            }
            plan.check_skip = a.creates.is_none() && a.removes.is_none();
        }
    }
    plan.commands.push(cmd);
    Ok(plan)
}

/// A `creates`/`removes` pattern as shell words: its glob characters active, the rest quoted.
fn glob_words(p: &str) -> String {
    let mut out = String::new();
    let mut lit = String::new();
    // A path argument: `~/` is the user's home, as Python's expanduser.
    let p = match p.strip_prefix("~/") {
        Some(rest) => {
            out.push_str("\"$HOME\"/");
            rest
        }
        None if p == "~" => return "\"$HOME\"".into(),
        None => p,
    };
    for c in p.chars() {
        if matches!(c, '*' | '?' | '[' | ']') {
            if !lit.is_empty() {
                out.push_str(&quote::quote(&lit));
                lit.clear();
            }
            out.push(c);
        } else {
            lit.push(c);
        }
    }
    if !lit.is_empty() || out.is_empty() {
        out.push_str(&quote::quote(&lit));
    }
    out
}

/// `async: N` with `poll: 0`: starts the command in a session of its own, under `timeout N`,
/// its output and exit status written to `~/.ansible_async/JID.d` (read by `async_status`).
async fn start_job(ctx: &StepCtx<'_>, plan: Plan) -> Result<Outcome, StepError> {
    let Some(cmd) = plan.commands.first() else { return Err(StepError::failed("nothing to run")) };
    if cmd.stdin.is_some() {
        return Err(StepError::failed("`async` with `poll: 0` and `stdin` is not supported by recover"));
    }
    let secs = ctx.task.async_secs.unwrap_or(0);
    let jid = format!("j{}.{}", uuid::Uuid::new_v4().as_u128() % 1_000_000_000_000, std::process::id());
    let dir = job_dir(&jid);
    let job = format!("timeout -k 5 {secs} sh -c {} > \"$1/out\" 2> \"$1/err\" </dev/null; echo $? > \"$1/rc.tmp\"; mv \"$1/rc.tmp\" \"$1/rc\"", quote::quote(&cmd.line()));
    let script = format!(
        "d={dir}; mkdir -p \"$d\" && chmod 700 \"$d\" && printf '%s' {} > \"$d/cmd\" && (setsid sh -c {} sh \"$d\" </dev/null >/dev/null 2>&1 &)",
        quote::quote(&cmd.line()),
        quote::quote(&job)
    );
    ctx.run_ok(Cmd::shell(script).label(format!("start in the background (async {secs}s): {}", cmd.display()))).await?;
    let mut result = plan.result;
    result.insert("ansible_job_id".into(), json!(jid));
    result.insert("started".into(), json!(true));
    result.insert("finished".into(), json!(false));
    result.insert("results_file".into(), json!(format!("~/.ansible_async/{jid}.d")));
    Ok(Outcome { changed: true, result })
}

async fn apply(ctx: &StepCtx<'_>, plan: Plan) -> Result<Outcome, StepError> {
    if ctx.task.poll_zero && ctx.task.async_secs.is_some() {
        return start_job(ctx, plan).await;
    }
    let mut result = plan.result;
    for cmd in plan.commands {
        let out = ctx.run(cmd.clone()).await?;
        // `timeout` exits 124 (or 137 after -k) when it killed the command.
        if let Some(t) = ctx.timeout.filter(|_| out.rc == 124 || out.rc == 137) {
            if ctx.task.async_secs == Some(t) {
                return Err(StepError::Failed { msg: format!("async task did not complete within the requested time - {t}s"), result: json!({"finished": true}) });
            }
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
#[cfg(test)]
mod tests {
    use super::expand_word;

    fn sh(word: &str) -> String {
        let out = std::process::Command::new("sh").args(["-c", &format!("printf '%s' {}", expand_word(word))]).env("RT_SET", "v a l").env_remove("RT_UNSET").output().unwrap();
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn words_expand_as_pythons_expandvars_and_expanduser() {
        let home = std::env::var("HOME").unwrap();
        assert_eq!(sh("$RT_SET"), "v a l");
        assert_eq!(sh("x${RT_SET}y"), "xv a ly");
        assert_eq!(sh("$RT_UNSET"), "$RT_UNSET");
        assert_eq!(sh("${RT_UNSET}/z"), "${RT_UNSET}/z");
        assert_eq!(sh("~/d"), format!("{home}/d"));
        assert_eq!(sh("a*b $(id) `id` 'q'"), "a*b $(id) `id` 'q'");
        assert_eq!(sh("$1"), "$1");
    }
}

#[async_trait]
impl Module for CommandLike {
    fn name(&self) -> &'static str {
        self.name
    }
    fn doc(&self) -> &'static str {
        Self::DOCS
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

/// The folder of a job's files, for the shell (`~` expanded by it).
pub fn job_dir(jid: &str) -> String {
    format!("\"$HOME\"/.ansible_async/{}.d", quote::quote(jid))
}
