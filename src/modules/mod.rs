//! Modules: one file each, each with `validate` (load time, from its
//! [`ArgSpec`]s), a read-only `plan`, and `apply`.
//!
//! A [`Plan`] is data: the changes in words, the exact commands `apply` will
//! run, the diff of a file. Dry-run prints the plan; the default `apply` runs
//! exactly `plan.commands`, so the two can never disagree.
//!
//! A new module is one file here plus one line in [`REGISTRY`].

mod add_host;
mod apt;
mod apt_key;
mod apt_repository;
mod assemble;
pub mod async_status;
mod assert;
mod backup;
mod blockinfile;
mod command;
mod container;
mod copy;
mod cron;
mod deb822_repository;
mod docker_exec;
mod debconf;
mod debug;
mod dpkg_selections;
mod fetch;
mod file;
mod find;
mod getent;
mod git;
mod group_by;
mod hostname;
mod http;
mod kafka;
mod known_hosts;
mod lineinfile;
pub mod meta;
pub mod modes;
pub mod unbuilt_args;
mod package_facts;
mod pause;
mod ping;
mod pip;
mod preserve;
pub mod raw;
mod reboot;
mod replace;
pub mod service;
mod script;
mod service_facts;
mod set_fact;
mod set_stats;
mod setup;
mod stat;
mod systemd;
mod tempfile;
mod unarchive;
mod user;
mod validate_argument_spec;
mod wait_for;
mod wait_for_connection;
pub mod write;

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use serde_json::{json, Value as Json};

use crate::error::{SResult, SourceError};
use crate::playbook::Task;
use crate::template::Templates;
use crate::transport::{Cmd, Connection, Output, TransportError};

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

/// One argument a module accepts.
#[derive(Clone, Copy, Debug)]
pub struct ArgSpec {
    pub name: &'static str,
    pub kind: Kind,
    pub required: bool,
}

/// Shorthand for an optional argument.
pub const fn opt(name: &'static str, kind: Kind) -> ArgSpec {
    ArgSpec { name, kind, required: false }
}
/// Shorthand for a required argument.
pub const fn req(name: &'static str, kind: Kind) -> ArgSpec {
    ArgSpec { name, kind, required: true }
}

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
    pub async fn run_ok(&self, cmd: Cmd) -> Result<Output, StepError> {
        let shown = cmd.display();
        let out = self.run(cmd).await?;
        if out.rc != 0 {
            return Err(StepError::failed(command_failure(self.host, &shown, &out)));
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

static REGISTRY: &[&dyn Module] = &[
    &async_status::AsyncStatus,
    &backup::Backup,
    &command::COMMAND,
    &command::SHELL,
    &file::File,
    &copy::Copy,
    &copy::Template,
    &blockinfile::BlockInFile,
    &lineinfile::LineInFile,
    &replace::Replace,
    &service::Service,
    &stat::Stat,
    &stat::Slurp,
    &wait_for::WaitFor,
    &kafka::KafkaCheckpoints,
    &preserve::PreserveMove,
    &systemd::SystemdShow,
    &assert::Assert,
    &assert::Fail,
    &set_fact::SetFact,
    &debug::Debug,
    &meta::Meta,
    &meta::IncludeVars,
    &setup::Setup,
    &apt::Apt,
    &apt_repository::AptRepository,
    &service_facts::ServiceFacts,
    &package_facts::PackageFacts,
    &unarchive::Unarchive,
    &raw::Raw,
    &script::Script,
    &find::Find,
    &getent::Getent,
    &tempfile::TempFile,
    &assemble::Assemble,
    &fetch::Fetch,
    &http::GetUrl,
    &http::Uri,
    &user::User,
    &user::Group,
    &systemd::SystemdService("systemd"),
    &systemd::SystemdService("systemd_service"),
    &apt::Package,
    &cron::Cron,
    &add_host::AddHost,
    &group_by::GroupBy,
    &set_stats::SetStats,
    &ping::Ping,
    &pause::Pause,
    &git::Git,
    &wait_for_connection::WaitForConnection,
    &reboot::Reboot,
    &hostname::Hostname,
    &known_hosts::KnownHosts,
    &pip::Pip,
    &deb822_repository::Deb822Repository,
    &apt_key::AptKey,
    &container::ContainerFacts,
    &container::RestartPolicy,
    &container::ContainerRemove,
    &docker_exec::DockerContainerExec,
    &debconf::Debconf,
    &dpkg_selections::DpkgSelections,
    &validate_argument_spec::ValidateArgumentSpec,
];

/// Why a task changes or removes data, when that is known from the task
/// itself (for `recover list` and the safety checks): overwriting a file,
/// deleting a path, stopping a service.
pub fn destructive(task: &Task) -> Option<String> {
    if let Some(d) = &task.declared {
        let tier = d.tier.map(|t| format!(", {t}")).unwrap_or_default();
        return Some(format!("{}{tier}", d.reason.clone().unwrap_or_else(|| format!("changes {}", d.paths.join(", ")))));
    }
    let arg = |k: &str| task.args.get(k).and_then(Json::as_str).map(str::to_string);
    match task.module.as_str() {
        "copy" | "template" | "blockinfile" | "lineinfile" | "replace" => Some(format!("overwrites {}", arg("dest").or_else(|| arg("path")).unwrap_or_default())),
        "file" if arg("state").as_deref() == Some("absent") => Some(format!("deletes {}", arg("path").or_else(|| arg("dest")).unwrap_or_default())),
        "service" if matches!(arg("state").as_deref(), Some("stopped") | Some("restarted")) => Some(format!("stops {}", arg("name").unwrap_or_default())),
        "command" | "shell" | "raw" | "script" if !task.read_only => Some("runs a command".into()),
        "docker_container_exec" if !task.read_only => Some(format!("runs a command in container {}", arg("container").unwrap_or_default())),
        "systemd" | "systemd_service" if matches!(arg("state").as_deref(), Some("stopped") | Some("restarted")) => Some(format!("stops {}", arg("name").unwrap_or_default())),
        "apt" | "package" if matches!(arg("state").as_deref(), Some("absent") | Some("removed")) => Some(format!("removes packages{}", if arg("purge").is_some() { " and their configuration" } else { "" })),
        "reboot" => Some("reboots the host".into()),
        "container_remove" => Some(format!("removes container {}", arg("name").unwrap_or_default())),
        "cron" => Some(format!("edits {}", arg("cron_file").map(|f| if f.starts_with('/') { f } else { format!("/etc/cron.d/{f}") }).unwrap_or_else(|| "a crontab".into()))),
        "user" | "group" if arg("state").as_deref() == Some("absent") => Some(format!("deletes {} {}", task.module, arg("name").unwrap_or_default())),
        _ => None,
    }
}

/// Modules a playbook often names by their short name that are not ansible.builtin: the
/// collection each comes from, for the load-time error.
const COLLECTION_MODULES: &[(&str, &str)] = &[
    ("sysctl", "ansible.posix"), ("mount", "ansible.posix"), ("authorized_key", "ansible.posix"), ("selinux", "ansible.posix"), ("seboolean", "ansible.posix"),
    ("firewalld", "ansible.posix"), ("synchronize", "ansible.posix"), ("acl", "ansible.posix"), ("at", "ansible.posix"), ("patch", "ansible.posix"),
    ("timezone", "community.general"), ("ufw", "community.general"), ("modprobe", "community.general"), ("locale_gen", "community.general"),
    ("pam_limits", "community.general"), ("ini_file", "community.general"), ("alternatives", "community.general"), ("make", "community.general"),
    ("snap", "community.general"), ("flatpak", "community.general"), ("npm", "community.general"), ("lvg", "community.general"), ("lvol", "community.general"),
    ("filesystem", "community.general"), ("parted", "community.general"), ("xml", "community.general"), ("htpasswd", "community.general"),
    ("docker_container", "community.docker"), ("docker_image", "community.docker"), ("docker_network", "community.docker"), ("docker_volume", "community.docker"),
    ("docker_compose", "community.docker"), ("docker_compose_v2", "community.docker"), ("postgresql_db", "community.postgresql"),
    ("postgresql_user", "community.postgresql"), ("postgresql_query", "community.postgresql"), ("mysql_db", "community.mysql"), ("mysql_user", "community.mysql"),
    ("openssl_privatekey", "community.crypto"), ("openssl_csr", "community.crypto"), ("x509_certificate", "community.crypto"), ("k8s", "kubernetes.core"),
    ("helm", "kubernetes.core"), ("archive", "community.general"), ("nmcli", "community.general"), ("systemd_timer", "community.general"),
];

/// Why a module name is not one recover runs, when it is a known one: a collection's module
/// named by its short name (ansible-core alone cannot resolve it either). The ansible.builtin
/// modules recover does not implement load, and are refused where they run ([`NotBuilt`]).
pub fn not_built(name: &str) -> Option<String> {
    COLLECTION_MODULES.iter().find(|(m, _)| *m == name).map(|(m, c)| format!("module '{m}' is {c}.{m}, from the {c} collection; recover runs the ansible.builtin modules it has built in"))
}

/// The module name a task key names: `ansible.builtin.X` and `ansible.legacy.X` are `X`, and so
/// are the collection modules recover builds in under their full names.
pub fn short_name(key: &str) -> &str {
    if let Some(s) = key.strip_prefix("ansible.builtin.").or_else(|| key.strip_prefix("ansible.legacy.")) {
        return s;
    }
    match key {
        "community.docker.docker_container_exec" => "docker_container_exec",
        other => other,
    }
}

/// The module of that name.
pub fn get(name: &str) -> Option<&'static dyn Module> {
    REGISTRY
        .iter()
        .copied()
        .find(|m| m.name() == name)
        .or_else(|| apt::UNSUPPORTED.iter().find(|m| m.0 == name).map(|m| m as &dyn Module))
        .or_else(|| NOT_BUILT.iter().find(|m| m.0 == name).map(|m| m as &dyn Module))
}

/// An ansible.builtin module recover does not implement: it loads (as in ansible-core, a task
/// a `when` skips does not matter), and a step that reaches a host with it is refused by name.
pub struct NotBuilt(pub &'static str);

#[async_trait]
impl Module for NotBuilt {
    fn name(&self) -> &'static str {
        self.0
    }
    fn spec(&self) -> &'static [ArgSpec] {
        &[]
    }
    fn free_keys(&self) -> bool {
        true
    }
    fn free_form(&self) -> bool {
        true
    }
    async fn plan(&self, _ctx: &StepCtx<'_>, _args: &Json) -> Result<Plan, StepError> {
        Err(StepError::failed(format!("module '{}' is an ansible.builtin module that recover does not implement", self.0)))
    }
}

static NOT_BUILT: [NotBuilt; 6] = [NotBuilt("iptables"), NotBuilt("expect"), NotBuilt("subversion"), NotBuilt("sysvinit"), NotBuilt("mount_facts"), NotBuilt("gather_facts")];

/// Every module name, for help and suggestions (those recover runs).
pub fn names() -> Vec<&'static str> {
    REGISTRY.iter().map(|m| m.name()).chain(apt::UNSUPPORTED.iter().map(|m| m.0)).collect()
}

/// Load-time check of a task's arguments against its module's spec.
pub fn validate(task: &Task) -> SResult<()> {
    let module = get(&task.module).ok_or_else(|| SourceError::new(task.module_span.clone(), format!("unknown module '{}'", task.module)))?;
    let Json::Object(args) = &task.args else { return Ok(()) };
    if module.free_keys() {
        return module.validate(task);
    }
    let spec = module.spec();
    for (k, v) in args {
        if k == "_raw_params" {
            if !module.free_form() {
                return Err(SourceError::new(task.module_span.clone(), format!("module '{}' needs arguments as a mapping (like `path: /x`), not a string", module.name())));
            }
            continue;
        }
        let Some(s) = spec.iter().find(|s| s.name == k) else {
            if unbuilt_args::known(module.name(), k) {
                continue;
            }
            let names: Vec<&str> = spec.iter().map(|s| s.name).collect();
            let e = SourceError::new(task.arg_span(k), format!("module '{}' has no argument '{k}'", module.name()));
            return Err(match crate::playbook::closest_name(k, &names) {
                Some(c) => e.help(format!("did you mean '{c}'? accepted: {}", names.join(", "))),
                None => e.help(format!("accepted: {}", names.join(", "))),
            });
        };
        if matches!(k.as_str(), "path" | "dest" | "src" | "name") && v.as_str() == Some("") && ["file", "copy", "template", "blockinfile", "stat", "slurp", "backup", "preserve_move"].contains(&module.name()) {
            return Err(SourceError::new(task.arg_span(k), format!("argument '{k}' of '{}' is empty", module.name())).help("give the path it works on"));
        }
        if k == "mode" && module.name() != "async_status" {
            check_mode(v).map_err(|m| SourceError::new(task.arg_span(k), format!("argument 'mode' of '{}': {m}", module.name())))?;
        }
        if !kind_ok(s.kind, v) {
            return Err(SourceError::new(task.arg_span(k), format!("argument '{k}' of '{}' must be {}, found {v}", module.name(), kind_name(s.kind))));
        }
    }
    for s in spec.iter().filter(|s| s.required) {
        let given = args.contains_key(s.name) || ALIASES.iter().any(|(name, aliases)| *name == s.name && aliases.iter().any(|a| spec.iter().any(|x| x.name == *a) && args.contains_key(*a)));
        if !given {
            return Err(SourceError::new(task.module_span.clone(), format!("module '{}' needs argument '{}'", module.name(), s.name)));
        }
    }
    module.validate(task)
}

/// A literal `mode:` must be an octal mode (`0644`, `"0750"`); a template is checked when rendered.
fn check_mode(v: &Json) -> Result<(), String> {
    match v {
        Json::String(s) if crate::template::is_template(s) => Ok(()),
        Json::Number(n) if n.as_u64().is_some_and(|m| m <= 0o7777) => Ok(()),
        Json::String(s) if u32::from_str_radix(s.trim().trim_start_matches("0o"), 8).is_ok_and(|m| m <= 0o7777) => Ok(()),
        Json::String(s) if s.contains(['+', '-', '=']) => modes::check(s.trim()),
        Json::String(s) if ["preserve"].contains(&s.as_str()) => Err("mode: preserve is not supported by recover; write the mode in octal".into()),
        Json::Null => Ok(()),
        other => Err(format!("expected an octal mode like \"0644\", found {other}")),
    }
}

/// Ansible's argument aliases (`file: dest=...` is `path`); a required argument may be given by one.
const ALIASES: &[(&str, &[&str])] = &[("path", &["dest", "name"]), ("dest", &["path"]), ("src", &["path"])];

pub(crate) fn kind_ok(kind: Kind, v: &Json) -> bool {
    if matches!(v, Json::String(s) if crate::template::is_template(s)) {
        return true;
    }
    match kind {
        Kind::Any => true,
        Kind::Str => !v.is_array() && !v.is_object(),
        Kind::Bool => v.is_boolean() || matches!(v, Json::String(s) if ["yes", "no", "true", "false"].contains(&s.to_lowercase().as_str())),
        Kind::Int => v.is_i64() || v.is_u64() || matches!(v, Json::String(s) if s.parse::<i64>().is_ok()),
        Kind::List => v.is_array() || v.is_string(),
        Kind::Map => v.is_object(),
    }
}

pub(crate) fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Any => "anything",
        Kind::Str => "text",
        Kind::Bool => "true or false",
        Kind::Int => "a whole number",
        Kind::List => "a list",
        Kind::Map => "a mapping",
    }
}

/// Where a `src:` file is: the role's folder (`templates/` or `files/`), the
/// playbook's, the project's, or the path as written.
pub fn find_src(src: &str, task: &Task, playbook_dir: &Path, root: &Path) -> Option<PathBuf> {
    find_src_kind(src, task, playbook_dir, root, false)
}

/// [`find_src`], a folder found too (`copy: src=conf.d/`).
pub fn find_src_kind(src: &str, task: &Task, playbook_dir: &Path, root: &Path, dirs_too: bool) -> Option<PathBuf> {
    let p = Path::new(src);
    if p.is_absolute() {
        return p.exists().then(|| p.to_path_buf());
    }
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(r) = &task.role_dir {
        dirs.extend([r.join("templates"), r.join("files"), r.clone()]);
    }
    dirs.extend([playbook_dir.join("templates"), playbook_dir.join("files"), playbook_dir.to_path_buf(), root.join("templates"), root.join("files"), root.to_path_buf()]);
    dirs.into_iter().map(|d| d.join(src)).find(|p| p.is_file() || dirs_too && p.is_dir())
}

/// A typed view of rendered arguments: `deny_unknown_fields` structs, with a
/// clear message when a rendered value has the wrong type.
pub fn typed<T: serde::de::DeserializeOwned>(module: &str, args: &Json) -> Result<T, StepError> {
    let mut args = args.clone();
    if let Json::Object(m) = &mut args {
        m.retain(|_, v| v.as_str() != Some(crate::template::OMIT));
    }
    serde_json::from_value(args).map_err(|e| StepError::failed(format!("module '{module}': {e}")))
}

/// Serde helpers for Ansible-style loose values.
pub mod de {
    use serde::{Deserialize, Deserializer};
    use serde_json::Value as Json;

    /// Ansible's words for true and false (`yes`, `on`, `1`, `no`, ...; case ignored).
    pub fn bool_word(s: &str) -> Option<bool> {
        match s.to_lowercase().as_str() {
            "yes" | "true" | "on" | "1" | "y" => Some(true),
            "no" | "false" | "off" | "0" | "n" | "" => Some(false),
            _ => None,
        }
    }

    /// A value as Ansible's `bool` type reads it: `true`, `"yes"`, `1`; `None` when it is not one.
    pub fn bool_value(v: &Json) -> Option<bool> {
        match v {
            Json::Bool(b) => Some(*b),
            Json::Number(n) => Some(n.as_i64() == Some(1)),
            Json::String(s) => bool_word(s),
            _ => None,
        }
    }

    /// `true`, `yes`, `"true"`, `1` ...
    pub fn bool_loose<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
        let v = Option::<Json>::deserialize(d)?;
        match v {
            None | Some(Json::Null) => Ok(None),
            Some(v) => bool_value(&v).map(Some).ok_or_else(|| serde::de::Error::custom(format!("expected true or false, found {v}"))),
        }
    }

    /// A whole number written as a number or as text.
    pub fn u64_loose<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        let v = Option::<Json>::deserialize(d)?;
        Ok(match v {
            None | Some(Json::Null) => None,
            Some(Json::Number(n)) => Some(n.as_u64().ok_or_else(|| serde::de::Error::custom("expected a whole number"))?),
            Some(Json::String(s)) => Some(s.trim().parse().map_err(|_| serde::de::Error::custom(format!("expected a whole number, found {s:?}")))?),
            Some(other) => return Err(serde::de::Error::custom(format!("expected a whole number, found {other}"))),
        })
    }

    /// A file mode: `0644` (YAML octal, an int), `"0644"`, `"644"`; returned as the bits.
    pub fn mode<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
        let v = Option::<Json>::deserialize(d)?;
        Ok(match v {
            None | Some(Json::Null) => None,
            Some(Json::Number(n)) => Some(n.as_u64().filter(|m| *m <= 0o7777).ok_or_else(|| serde::de::Error::custom("mode out of range"))? as u32),
            Some(Json::String(s)) => Some(
                u32::from_str_radix(s.trim().trim_start_matches("0o"), 8)
                    .ok()
                    .filter(|m| *m <= 0o7777)
                    .ok_or_else(|| serde::de::Error::custom(format!("mode must be octal like '0644', found {s:?} (symbolic modes are not supported)")))?,
            ),
            Some(other) => return Err(serde::de::Error::custom(format!("bad mode {other}"))),
        })
    }

    /// A list written as a list or as one text.
    pub fn list_loose<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        let v = Option::<Json>::deserialize(d)?;
        Ok(match v {
            None | Some(Json::Null) => Vec::new(),
            Some(Json::Array(items)) => items.into_iter().map(|i| match i {
                Json::String(s) => s,
                other => other.to_string(),
            }).collect(),
            Some(Json::String(s)) => vec![s],
            Some(other) => vec![other.to_string()],
        })
    }
}
