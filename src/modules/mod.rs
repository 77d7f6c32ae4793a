//! Modules: the contract every module keeps, each with `validate` (load time, from its
//! [`ArgSpec`]s), a read-only `plan`, and `apply`; a doc comment that `recover doc` prints.
//!
//! A [`Plan`] is data: the changes in words, the exact commands `apply` will
//! run, the diff of a file. Dry-run prints the plan; the default `apply` runs
//! exactly `plan.commands`, so the two can never disagree.
//!
//! Modules live in families (`files/`, `packages/`, `system/`, `commands/`, `docker/`,
//! `control/`), their shared helpers in `support/`. A new module is one file in its family plus
//! one line in the registry (`registry.rs`).

pub mod commands;
pub mod control;
pub mod docker;
pub mod files;
pub mod packages;
pub mod python;
mod registry;
pub mod support;
pub mod system;

use std::path::Path;

use async_trait::async_trait;
use serde_json::{json, Value as Json};

use crate::error::{SResult, SourceError};
use crate::playbook::Task;
use crate::template::Templates;
use crate::transport::{Cmd, Connection, Output, TransportError};

pub use registry::*;
pub use support::args::{de, kind_name, kind_ok, typed, validate};

/// The kind of value an argument takes (checked at load time when the value is not a template).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    Str,
    Bool,
    Int,
    List,
    Map,
    Any,
}

/// One argument a module accepts: its name, type, other names, default and what it does, the
/// one place the load-time check and `recover doc` both read.
#[derive(Clone, Copy, Debug)]
pub struct ArgSpec {
    pub name: &'static str,
    pub kind: Kind,
    pub required: bool,
    /// Other names Ansible takes for it (`dest` for `path`).
    pub aliases: &'static [&'static str],
    /// Its default as Ansible writes it, when it has one.
    pub default: Option<&'static str>,
    /// One line: what it does.
    pub doc: &'static str,
}

impl ArgSpec {
    pub const fn aliases(self, aliases: &'static [&'static str]) -> ArgSpec {
        ArgSpec { aliases, ..self }
    }
    pub const fn default(self, default: &'static str) -> ArgSpec {
        ArgSpec { default: Some(default), ..self }
    }
    pub const fn doc(self, doc: &'static str) -> ArgSpec {
        ArgSpec { doc, ..self }
    }
    /// Whether `key` names this argument (its name or an alias).
    pub fn named(&self, key: &str) -> bool {
        self.name == key || self.aliases.contains(&key)
    }
}

/// Shorthand for an optional argument.
pub const fn opt(name: &'static str, kind: Kind) -> ArgSpec {
    ArgSpec { name, kind, required: false, aliases: &[], default: None, doc: "" }
}
/// Shorthand for a required argument.
pub const fn req(name: &'static str, kind: Kind) -> ArgSpec {
    ArgSpec { name, kind, required: true, aliases: &[], default: None, doc: "" }
}

/// The arguments every module that writes a file shares, with one description each.
pub const MODE_ARG: ArgSpec = opt("mode", Kind::Any).doc("The file's mode (octal like `0644`, symbolic like `u=rw,g=r`).");
pub const OWNER_ARG: ArgSpec = opt("owner", Kind::Str).doc("The file's owner.");
pub const GROUP_ARG: ArgSpec = opt("group", Kind::Str).doc("The file's group.");
pub const VALIDATE_ARG: ArgSpec = opt("validate", Kind::Str).doc("A command that must accept the new file (`%s` is its path) before it replaces the old.");
pub const BACKUP_ARG: ArgSpec = opt("backup", Kind::Bool).default("false").doc("Keep a copy of the file it replaces (recover always takes its verified backup).");
pub const UNSAFE_WRITES_ARG: ArgSpec = opt("unsafe_writes", Kind::Bool).default("false").doc("Accepted for Ansible; recover always writes through a temporary file.");

/// What a module may ask of the run beyond its own host, given by the executor and narrow on
/// purpose: a module never sees the run's variables or its reporter whole.
pub trait Run: Sync {
    /// How many `-v` the run was given.
    fn verbosity(&self) -> u8;
    /// Changes the run's inventory (`add_host`, `group_by`); true when it changed.
    fn change_inventory(&self, f: &mut dyn FnMut(&mut crate::inventory::Inventory) -> bool) -> bool;
    /// Runs `f` with the progress display paused (a prompt at the terminal).
    fn pause(&self, f: &mut dyn FnMut());
}

/// Everything a module may use while planning or applying one step on one host.
pub struct StepCtx<'a> {
    pub host: &'a str,
    pub conn: &'a Connection,
    pub templates: &'a Templates,
    /// The run's few capabilities a module may use (see [`Run`]).
    pub run: &'a dyn Run,
    /// Where this step's own records go on the host (`recover_backup_root`, else the SOP's
    /// `/var/backups/recover`): restart-policy records, container exports.
    pub backup_root: String,
    /// The host's variables for this step, as a template context.
    pub vars: &'a minijinja::Value,
    pub become_user: Option<String>,
    pub check: bool,
    pub task: &'a Task,
    pub playbook_dir: &'a Path,
    pub project_root: &'a Path,
    pub timeout: Option<u64>,
    /// Set by the executor before `apply`: commands from then on are actions, run in a
    /// process group of their own that an aborted run can kill on the host.
    pub applying: std::sync::atomic::AtomicBool,
    /// `environment:` of the task (and its block, role and play): set for every command.
    pub environment: Vec<(String, String)>,
}

impl StepCtx<'_> {
    /// Runs a command as the step's user, with the step's timeout and environment.
    pub async fn run(&self, cmd: Cmd) -> Result<Output, StepError> {
        let tracked = cmd.tracked || self.applying.load(std::sync::atomic::Ordering::SeqCst);
        let script = if self.environment.is_empty() {
            cmd.script
        } else {
            match cmd.script {
                crate::transport::Script::Argv(words) => {
                    let mut w = vec!["env".to_string()];
                    w.extend(self.environment.iter().map(|(k, v)| format!("{k}={v}")));
                    w.extend(words);
                    crate::transport::Script::Argv(w)
                }
                crate::transport::Script::Shell(s) => {
                    let exports: String = self.environment.iter().map(|(k, v)| format!("{k}={}; export {k}; ", crate::transport::quote::quote(v))).collect();
                    crate::transport::Script::Shell(format!("{exports}{s}"))
                }
            }
        };
        let cmd = Cmd { script, become_user: cmd.become_user.or_else(|| self.become_user.clone()), timeout: cmd.timeout.or(self.timeout), tracked, ..cmd };
        self.conn.exec(&cmd).await.map_err(StepError::from)
    }
    /// Runs a command and fails the step, naming host, command, exit code and stderr, when it exits non-zero.
    /// A line of stderr that starts with [`MSG_MARK`] is the failure's `msg` as ansible-core words it.
    pub async fn run_ok(&self, cmd: Cmd) -> Result<Output, StepError> {
        let shown = cmd.display();
        let out = self.run(cmd).await?;
        if out.rc != 0 {
            let err = out.stderr_str();
            let said = err.lines().find_map(|l| l.strip_prefix(MSG_MARK)).map(str::to_string);
            return Err(match said {
                Some(m) => StepError::Failed { msg: format!("host {}: {m}", self.host), result: json!({ "msg": m, "rc": out.rc }) },
                None => StepError::failed(command_failure(self.host, &shown, &out)),
            });
        }
        Ok(out)
    }
    /// This host's connection as the step's user, for the backup code.
    pub fn remote(&self) -> crate::safety::backup::Remote<'_> {
        crate::safety::backup::Remote { conn: self.conn, host: self.host, user: self.become_user.clone() }
    }
    /// Reads a remote file as the step's user; `None` when it does not exist.
    pub async fn read(&self, path: &str) -> Result<Option<Vec<u8>>, StepError> {
        self.conn.get(path, self.become_user.clone()).await.map_err(StepError::from)
    }
    /// What `path` is and, for a readable regular file, its bytes, in one round trip.
    pub async fn stat_read(&self, path: &str) -> Result<(Option<crate::facts::StatInfo>, Option<Vec<u8>>), StepError> {
        Ok(crate::facts::parse_stat_read(&self.run(crate::facts::stat_read_cmd(path)).await?))
    }
}

/// What recover's own scripts print first on a stderr line to give the step's failure message.
pub const MSG_MARK: &str = "__recover_msg: ";

/// "host 188: `cmd` exited 1: <stderr tail>"
pub fn command_failure(host: &str, cmd: &str, out: &Output) -> String {
    let err = out.stderr_str();
    let err = err.trim();
    let tail: String = if err.len() > 600 { format!("...{}", &err[err.len() - 600..]) } else { err.to_string() };
    let tail = if tail.is_empty() { out.stdout_str().trim().chars().rev().take(300).collect::<Vec<_>>().into_iter().rev().collect() } else { tail };
    format!("host {host}: `{cmd}` exited {}: {}", out.rc, if tail.is_empty() { "(no output)".into() } else { tail })
}

/// Why a step did not finish.
#[derive(Debug)]
pub enum StepError {
    /// The step failed on the host; the result says what it saw.
    Failed { msg: String, result: Json },
    /// The host went away.
    Unreachable(String),
    /// Bad input found at run time (a template error in an argument).
    Input(SourceError),
}

impl StepError {
    pub fn failed(msg: impl Into<String>) -> StepError {
        StepError::Failed { msg: msg.into(), result: json!({}) }
    }
}

impl From<TransportError> for StepError {
    fn from(e: TransportError) -> Self {
        match e {
            TransportError::Become { .. } => StepError::failed(e.to_string()),
            other => StepError::Unreachable(other.to_string()),
        }
    }
}

impl From<SourceError> for StepError {
    fn from(e: SourceError) -> Self {
        StepError::Input(e)
    }
}

/// A file's content before and after, for a unified diff.
#[derive(Clone, Debug)]
pub struct FileDiff {
    pub path: String,
    pub before: Option<Vec<u8>>,
    pub after: Option<Vec<u8>>,
    /// The mode before and after, when it changes too (Ansible's "file attributes" diff).
    pub mode: Option<(u32, u32)>,
    /// A diff the module prepared itself (ansible-core's `prepared`: git's `git diff`), shown as is.
    pub prepared: Option<String>,
}

impl FileDiff {
    /// The unified diff of the content (when it changes), then of the attributes.
    pub fn unified(&self) -> String {
        if let Some(p) = &self.prepared {
            return if p.ends_with('\n') { p.clone() } else { format!("{p}\n") };
        }
        let mut out = if self.before != self.after { self.content_diff() } else { String::new() };
        if let Some((b, a)) = self.mode {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(&format!(
                "--- before: {p} (file attributes)\n+++ after: {p} (file attributes)\n@@ -1,3 +1,3 @@\n {{\n-    \"mode\": \"{b:04o}\"\n+    \"mode\": \"{a:04o}\"\n }}\n",
                p = self.path
            ));
        }
        out
    }

    /// The unified diff, cut past [`DIFF_CAP`] bytes (the largest kept whole in events and the
    /// run log); a cut diff names the sha256 of both sides.
    pub fn capped(&self) -> String {
        let text = self.unified();
        if text.len() <= DIFF_CAP {
            return text;
        }
        let mut cut = DIFF_CAP;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        let sha = |b: &Option<Vec<u8>>| b.as_ref().map(|b| crate::digest::sha256_hex(b)).unwrap_or_else(|| "(absent)".into());
        format!("{}\n... diff cut at {DIFF_CAP} of {} bytes; before sha256 {}, after sha256 {}\n", &text[..cut], text.len(), sha(&self.before), sha(&self.after))
    }

    /// The unified diff text of the content (`similar`), or a note for binary content.
    fn content_diff(&self) -> String {
        let text = |b: &Option<Vec<u8>>| b.as_ref().map(|b| String::from_utf8(b.clone()));
        match (text(&self.before), text(&self.after)) {
            (Some(Err(_)), _) | (_, Some(Err(_))) => format!("binary content of {} differs\n", self.path),
            (before, after) => {
                let b = before.and_then(Result::ok).unwrap_or_default();
                let a = after.and_then(Result::ok).unwrap_or_default();
                let before_name = if self.before.is_some() { format!("before: {}", self.path) } else { "before: (absent)".into() };
                let after_name = if self.after.is_some() { format!("after: {}", self.path) } else { "after: (absent)".into() };
                // A deadline: Myers' diff is O(N*D), minutes for a large file rewritten whole.
                similar::TextDiff::configure()
                    .timeout(std::time::Duration::from_millis(300))
                    .diff_lines(&b, &a)
                    .unified_diff()
                    .context_radius(3)
                    .header(&before_name, &after_name)
                    .to_string()
            }
        }
    }
}

/// The largest diff kept whole in events and the run log.
pub const DIFF_CAP: usize = 256 * 1024;

/// What a step would do on a host. Built by `plan`, read-only.
#[derive(Debug, Default)]
pub struct Plan {
    /// The changes, in words an operator reads ("create directory /x").
    pub changes: Vec<String>,
    /// The exact commands `apply` runs, in order.
    pub commands: Vec<Cmd>,
    pub diff: Option<FileDiff>,
    /// Values for `register`, known at plan time.
    pub result: serde_json::Map<String, Json>,
    /// The step already ran completely while planning (read-only modules).
    pub done: bool,
    /// `apply` must run although nothing changes (e.g. `wait_for`).
    pub run_anyway: bool,
    /// A note for dry-run output ("would wait for port 5432").
    pub note: Option<String>,
    /// The module does not run here (ansible-core's "does not support check mode"): the step
    /// is skipped with this reason.
    pub skipped: Option<String>,
    /// In a dry-run the step is reported skipped, as ansible-core's check mode skips a command
    /// it cannot predict, though the plan (its commands, tier, saved-plan entry) stands.
    pub check_skip: bool,
    /// Set when the change overwrites, deletes, moves or stops something:
    /// the executor then takes a verified backup and asks before `apply`.
    pub destructive: Option<crate::safety::Destructive>,
    /// The arguments `apply` passes on as they are (a module ansible-core packs, run again
    /// for real with the arguments its check-mode run had).
    pub args: Option<Json>,
}

impl Plan {
    pub fn changed(&self) -> bool {
        !self.changes.is_empty()
    }
    /// A plan that changes nothing.
    pub fn ok() -> Plan {
        Plan::default()
    }
    /// A plan whose work is done (read-only modules), with its result.
    pub fn done(result: Json) -> Plan {
        Plan { done: true, result: result.as_object().cloned().unwrap_or_default(), ..Default::default() }
    }
}

/// What `apply` did.
#[derive(Debug, Default)]
pub struct Outcome {
    pub changed: bool,
    pub result: serde_json::Map<String, Json>,
}

/// The module contract (see the module doc).
#[async_trait]
pub trait Module: Send + Sync {
    fn name(&self) -> &'static str;
    /// What `recover doc` prints: the module's doc comment (a summary, then what it returns to
    /// `register`, then what check mode does).
    fn doc(&self) -> &'static str;
    /// The arguments it accepts.
    fn spec(&self) -> &'static [ArgSpec];
    /// Accepts a free-form string (`command: echo hi`) as `_raw_params`.
    fn free_form(&self) -> bool {
        false
    }
    /// Takes any argument names (`set_fact`); its own `validate` checks them.
    fn free_keys(&self) -> bool {
        false
    }
    /// Arguments rendered in shell mode (values quoted), not as data.
    fn shell_args(&self) -> &'static [&'static str] {
        &[]
    }
    /// Extra load-time checks beyond the spec.
    fn validate(&self, _task: &Task) -> SResult<()> {
        Ok(())
    }
    /// Read-only: looks at the host and says what `apply` would do. Must not change the host.
    async fn plan(&self, ctx: &StepCtx<'_>, args: &Json) -> Result<Plan, StepError>;
    /// Makes the change `plan` described. Never called in dry-run.
    async fn apply(&self, ctx: &StepCtx<'_>, plan: Plan) -> Result<Outcome, StepError> {
        run_plan_commands(ctx, plan).await
    }
}

/// The default `apply`: run the plan's commands in order, stop at the first failure.
pub async fn run_plan_commands(ctx: &StepCtx<'_>, plan: Plan) -> Result<Outcome, StepError> {
    let changed = plan.changed();
    let mut result = plan.result;
    for cmd in plan.commands {
        let out = ctx.run_ok(cmd).await?;
        result.insert("stdout".into(), Json::String(out.stdout_str()));
    }
    Ok(Outcome { changed, result })
}


pub use crate::playbook::{find_src, find_src_kind};

/// Whether a task certainly gives argument `k`, as a load-time check can know: given, not null,
/// and not a template (`{{ x | default(omit) }}` may leave it out).
pub fn certainly_given(task: &crate::playbook::Task, k: &str) -> bool {
    task.args.get(k).is_some_and(|v| !v.is_null() && !v.as_str().is_some_and(crate::template::is_template))
}

/// ansible-core's mutually exclusive arguments, in the rendered arguments of a step.
pub fn exclusive(module: &str, args: &Json, pairs: &[(&str, &str)]) -> Result<(), StepError> {
    let has = |k: &str| args.get(k).is_some_and(|v| !v.is_null());
    match pairs.iter().find(|(a, b)| has(a) && has(b)) {
        Some((a, b)) => Err(StepError::failed(format!("{module}: parameters are mutually exclusive: {a}|{b}"))),
        None => Ok(()),
    }
}

