//! Modules recover does not build in, run from the operator's own installed Ansible: a
//! collection's module (`community.general.ini_file`), a playbook's or role's `library/`, an
//! ansible.builtin module recover has no native version of. ansible-core itself finds and
//! packs each one (see [`controller`]); recover runs the packed module with the host's Python
//! over the host's existing session, and its JSON result is the step's result.
//!
//! Every such step goes through the safety engine as a native one does: its plan is the module
//! run in check mode with diff (the dry-run, the preview, the saved-plan entry); a changing step
//! whose path-like arguments exist on the host gets their verified backup and asks at its tier;
//! a module with no check mode asks at least at the baseline's default tier.



use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use base64::Engine as _;
use documented::Documented;
use serde_json::{json, Map, Value as Json};

use super::{ArgSpec, Module, Outcome, Plan, StepCtx, StepError};
use crate::playbook::Scope;
use crate::transport::{quote, Cmd};

/// One module found through ansible-core.
#[derive(Debug)]
pub struct PyModule {
    /// Its full name, as ansible-core resolved it (routing followed).
    pub fqcn: &'static str,
    /// Its file on this machine.
    pub path: String,
    /// The folders it was found with (`library/`, `module_utils/`), for packing it.
    dirs: Json,
}

static FOUND: Mutex<Option<HashMap<String, &'static PyModule>>> = Mutex::new(None);
static ASKED: Mutex<Option<HashMap<String, Result<String, Option<String>>>>> = Mutex::new(None);

/// The module of that name found this run.
pub fn get(name: &str) -> Option<&'static PyModule> {
    FOUND.lock().unwrap_or_else(|e| e.into_inner()).as_ref().and_then(|m| m.get(name).copied())
}

/// Where ansible-core would look beside a task: the playbook's and the role's `library/`,
/// `module_utils/` and `action_plugins/`, and the playbook's `collections/`.
fn dirs_of(scope: &Scope<'_>) -> Json {
    let mut bases = vec![scope.playbook_dir.display().to_string()];
    bases.extend(scope.role_dir.map(|r| r.display().to_string()));
    let mut dirs = crate::pyansible::folders(&bases, &["library", "module_utils", "action_plugins"]);
    dirs["playbook_dirs"] = json!([scope.playbook_dir.display().to_string()]);
    dirs
}

/// Finds `key` as ansible-core would for a task in `scope`: `Ok` its full name (the step's
/// module from then on), `Err(Some(why))` when it cannot run here, `Err(None)` when no Python
/// with ansible-core is there to ask and `key` is no module name recover knows of.
///
/// `native` says whether recover builds a module in: an action plugin that is one of
/// ansible-core's own under another name resolves to that module where it does.
pub fn resolve(key: &str, scope: &Scope<'_>, native: &dyn Fn(&str) -> bool) -> Result<String, Option<String>> {
    let dirs = dirs_of(scope);
    let memo = format!("{key}\0{}\0{dirs}", scope.collections.join(","));
    if let Some(r) = ASKED.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert_with(HashMap::new).get(&memo) {
        return r.clone();
    }
    let r = match crate::pyansible::ask_in(json!({"op": "find", "name": key, "collections": scope.collections}), &dirs) {
        Err(why) => Err((key.contains('.') && !key.starts_with("ansible.builtin.") && !key.starts_with("ansible.legacy.")).then(|| format!("module '{key}' is not built into recover, and {why}: {}", crate::pyansible::INSTALL_HINT))),
        Ok(a) if a["found"] == json!(true) => found(key, &a, dirs),
        Ok(a) if a["removed"] == json!(true) => Err(Some(format!("module '{key}': {}", a["msg"].as_str().unwrap_or("removed")))),
        Ok(a) => {
            let searched: Vec<&str> = a["searched"].as_array().map(|v| v.iter().filter_map(Json::as_str).collect()).unwrap_or_default();
            // An action plugin that is one of ansible-core's own under another name (a target's
            // `action_plugins/debug_var_alias.py` re-exporting `debug`): that module, where
            // recover builds it in.
            if let Some(builtin) = a["alias_of"].as_str().filter(|b| native(b)) {
                Ok(builtin.to_string())
            } else if !key.contains('.') && scope.collections.is_empty() {
                // A bare word no collection has is no module (a misspelt keyword): the caller names it.
                Err(None)
            } else {
                Err(Some(format!("module '{key}' was not found (ansible-core looked in: {})", if searched.is_empty() { "its collection paths".into() } else { searched.join(", ") })))
            }
        }
    };
    ASKED.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert_with(HashMap::new).insert(memo, r.clone());
    r
}

/// What `recover doc NAME` says of a module ansible-core finds (from the current folder, as
/// ansible-doc would): where it comes from, what it does, its arguments. `None` when no
/// ansible-core is installed or it has no such module.
pub fn describe(key: &str) -> Option<String> {
    let cwd = std::env::current_dir().unwrap_or_default();
    let scope = Scope { playbook_dir: &cwd, role_dir: None, collections: &[] };
    let a = crate::pyansible::ask_in(json!({"op": "doc", "name": key}), &dirs_of(&scope)).ok().filter(|a| a["found"] == json!(true))?;
    let clean = crate::report::clean_line;
    let mut out = format!("{} - {}\n\n", clean(a["fqcn"].as_str().unwrap_or(key)), clean(a["summary"].as_str().unwrap_or_default()));
    out.push_str(&format!("  from: {}\n", clean(a["path"].as_str().unwrap_or_default())));
    if let Some(r) = a["redirects"].as_array().filter(|r| r.len() > 1) {
        out.push_str(&format!("  routed: {}\n", clean(&r.iter().filter_map(Json::as_str).collect::<Vec<_>>().join(" -> "))));
    }
    out.push_str(&format!("  run by: the installed ansible-core {} (packed as ansible-core packs it, run with the host's Python)\n", crate::pyansible::version()));
    let how = match (a["action"].as_str(), a["check_mode"].as_str().unwrap_or_default()) {
        (Some(_), _) => "refused: it needs a controller-side action plugin recover does not implement".to_string(),
        (None, "none") => "no check mode: a dry-run skips it, and the real run asks first".to_string(),
        (None, s) => format!("check mode {}: its check-mode run with diff is the dry-run and the preview", if s.is_empty() { "as the module says" } else { s }),
    };
    out.push_str(&format!("  safety: {how}\n\nArguments:\n"));
    for o in a["options"].as_array().into_iter().flatten() {
        let aliases = o["aliases"].as_array().filter(|v| !v.is_empty()).map(|v| format!(" (also {})", v.iter().filter_map(Json::as_str).collect::<Vec<_>>().join(", "))).unwrap_or_default();
        let req = if o["required"] == json!(true) { ", required" } else { "" };
        let def = if o["default"].is_null() { String::new() } else { format!(", default {}", o["default"]) };
        out.push_str(&format!("  {}{aliases} [{}{req}{def}]\n      {}\n", clean(o["name"].as_str().unwrap_or_default()), clean(o["type"].as_str().unwrap_or("str")), clean(o["description"].as_str().unwrap_or_default())));
    }
    Some(out)
}

fn found(key: &str, a: &Json, dirs: Json) -> Result<String, Option<String>> {
    let fqcn = a["fqcn"].as_str().unwrap_or(key).to_string();
    if let Some(action) = a["action"].as_str() {
        return Err(Some(format!("module '{fqcn}' runs through a controller-side action plugin ({action}), which recover does not implement; it runs ansible-core's modules, not their action plugins")));
    }
    if a["style"].as_str() != Some("python") {
        return Err(Some(format!("module '{fqcn}' ({}) is not a Python module written for AnsibleModule; recover runs those", a["path"].as_str().unwrap_or_default())));
    }
    let mut found = FOUND.lock().unwrap_or_else(|e| e.into_inner());
    let map = found.get_or_insert_with(HashMap::new);
    if !map.contains_key(&fqcn) {
        let m: &'static PyModule = Box::leak(Box::new(PyModule { fqcn: Box::leak(fqcn.clone().into_boxed_str()), path: a["path"].as_str().unwrap_or_default().to_string(), dirs }));
        map.insert(fqcn.clone(), m);
    }
    Ok(fqcn)
}

/// `*_info` and `*_facts` modules only read (ansible-core's convention): they run for real in
/// a dry-run, and never ask.
fn read_only(fqcn: &str) -> bool {
    fqcn.ends_with("_info") || fqcn.ends_with("_facts")
}

/// Arguments that name a file or folder the module changes.
const PATH_ARGS: &[&str] = &["path", "dest", "destfile", "file", "data_dir", "pgdata", "config_file", "conf_file", "sysctl_file", "project_src", "chdir_path"];

/// States that remove or stop what they name.
const REMOVING: &[&str] = &["absent", "removed", "unmounted", "stopped", "killed", "deleted", "restarted", "dropped", "purged"];

/// The arguments of one call: the task's, then ansible-core's internal ones.
fn params(ctx: &StepCtx<'_>, fqcn: &str, args: &Json, check: bool, diff: bool) -> Json {
    let mut a: Map<String, Json> = args.as_object().cloned().unwrap_or_default();
    a.retain(|k, _| !k.starts_with("_ansible_"));
    let no_log = ctx.task.no_log.as_ref().and_then(crate::playbook::Flag::fixed).unwrap_or(false);
    let internal = json!({
        "_ansible_check_mode": check,
        "_ansible_no_log": no_log,
        "_ansible_debug": false,
        "_ansible_diff": diff,
        "_ansible_verbosity": ctx.run.verbosity(),
        "_ansible_version": crate::pyansible::version(),
        "_ansible_module_name": fqcn,
        "_ansible_syslog_facility": "LOG_USER",
        "_ansible_selinux_special_fs": ["fuse", "nfs", "vboxsf", "ramfs", "9p", "vfat"],
        "_ansible_socket": null,
        "_ansible_shell_executable": "/bin/sh",
        "_ansible_keep_remote_files": false,
        "_ansible_tmpdir": null,
        "_ansible_remote_tmp": "~/.ansible/tmp",
        "_ansible_ignore_unknown_opts": false,
        "_ansible_target_log_info": null,
        "_ansible_tracebacks_for": [],
    });
    a.extend(internal.as_object().cloned().unwrap_or_default());
    json!({ "ANSIBLE_MODULE_ARGS": a })
}

/// The shell line that runs the Python program on stdin with the host's Python:
/// `ansible_python_interpreter` when set, else the first of ansible-core's usual ones.
fn interpreter_line(ctx: &StepCtx<'_>) -> String {
    let set = ctx.vars.get_attr("ansible_python_interpreter").ok().filter(|v| !v.is_undefined() && !v.is_none()).map(|v| v.to_string());
    match set {
        Some(p) if !p.starts_with("auto") => format!("{} -", quote::quote(&p)),
        _ => "for P in /usr/bin/python3 python3 /usr/libexec/platform-python /usr/bin/python python; do command -v \"$P\" >/dev/null 2>&1 && break; P=; done; if [ -z \"$P\" ]; then echo 'no Python on this host (ansible-core modules need one; set ansible_python_interpreter)' >&2; exit 127; fi; \"$P\" -".into(),
    }
}

/// ansible-core's reading of a module's output: the JSON between the first line that starts
/// one and the last line that ends it.
fn json_of(stdout: &str) -> Option<Map<String, Json>> {
    let lines: Vec<&str> = stdout.lines().collect();
    let start = lines.iter().position(|l| l.trim_start().starts_with('{'))?;
    let end = lines.iter().rposition(|l| l.trim_end().ends_with('}'))?;
    if end < start {
        return None;
    }
    serde_json::from_str::<Json>(&lines[start..=end].join("\n")).ok()?.as_object().cloned()
}

impl PyModule {
    /// Runs the module once on the host; its result as ansible-core registers it.
    async fn call(&self, ctx: &StepCtx<'_>, args: &Json, check: bool, diff: bool) -> Result<Map<String, Json>, StepError> {
        let built = crate::pyansible::build(self.fqcn, &self.path, &self.dirs).map_err(StepError::failed)?;
        let params = serde_json::to_vec(&params(ctx, self.fqcn, args, check, diff)).unwrap_or_default();
        let b64 = base64::engine::general_purpose::STANDARD.encode(params);
        let code = built.code.replacen(&built.mark, &format!("__import__('base64').b64decode('{b64}').decode()"), 1);
        let cmd = Cmd::shell(interpreter_line(ctx)).stdin(code.into_bytes()).label(format!("{} (ansible-core module{})", self.fqcn, if check { ", check mode" } else { "" }));
        let out = ctx.run(cmd).await?;
        let stdout = out.stdout_str();
        let Some(mut r) = json_of(&stdout) else {
            let err = out.stderr_str();
            let tail = |s: &str| s.chars().rev().take(2000).collect::<Vec<_>>().into_iter().rev().collect::<String>();
            let msg = if out.rc == 127 && err.contains("no Python") { err.trim().to_string() } else { "Module result deserialization failed: No start of json char found".to_string() };
            let result = json!({"failed": true, "msg": msg, "module_stdout": tail(&stdout), "module_stderr": tail(&err), "rc": out.rc});
            return Err(StepError::Failed { msg: format!("host {}: {}: {msg}\n{}", ctx.host, self.fqcn, tail(err.trim()).trim()), result });
        };
        r.retain(|k, _| !k.starts_with("_ansible_") || k == "_ansible_no_log");
        if !r.contains_key("failed") {
            let rc_failed = r.get("rc").is_some_and(|rc| rc.as_i64().is_some_and(|n| n != 0) || rc.as_str().is_some_and(|s| s != "0"));
            r.insert("failed".into(), Json::Bool(rc_failed));
        }
        r.entry("changed").or_insert(Json::Bool(false));
        // ansible-core 2.19's modules report an error as an event chain; the controller reads
        // its messages, joined, as the step's `msg` and `exception`.
        if let Some(e) = r.get("exception").filter(|e| e.is_object()).cloned() {
            let text = event_text(&e);
            r.entry("msg").or_insert_with(|| Json::String(format!("Task failed: Module failed: {text}")));
            r.insert("exception".into(), Json::String(text));
        }
        if r.get("failed") == Some(&Json::Bool(true)) {
            let msg = r.get("msg").map(|m| m.as_str().map(str::to_string).unwrap_or_else(|| m.to_string())).unwrap_or_else(|| "the module failed".into());
            return Err(StepError::Failed { msg: format!("host {}: {}: {msg}", ctx.host, self.fqcn), result: Json::Object(r) });
        }
        Ok(r)
    }

    /// The path-like arguments that exist on the host (one round trip), for the backup.
    async fn existing_paths(&self, ctx: &StepCtx<'_>, args: &Json) -> Result<Vec<String>, StepError> {
        let wants: Vec<String> = PATH_ARGS
            .iter()
            .filter_map(|k| args.get(*k).and_then(Json::as_str))
            .chain(args.get("src").filter(|_| args.get("remote_src").and_then(crate::modules::de::bool_value).unwrap_or(false)).and_then(Json::as_str))
            .filter(|p| p.starts_with('/'))
            .map(str::to_string)
            .collect();
        if wants.is_empty() {
            return Ok(Vec::new());
        }
        let script = format!("for p in {}; do [ -e \"$p\" ] && printf '%s\\n' \"$p\"; done; true", quote::join(&wants));
        let out = ctx.run(Cmd::shell(script).label("which of the module's paths exist")).await?;
        Ok(out.stdout_str().lines().filter(|l| !l.is_empty()).map(str::to_string).collect())
    }
}

/// The messages of an ansible-core error summary (`{event: {msg, chain: {event: ...}}}`), joined.
fn event_text(e: &Json) -> String {
    let mut parts = Vec::new();
    let mut cur = e.get("event").or(Some(e));
    while let Some(ev) = cur {
        if let Some(m) = ev.get("msg").and_then(Json::as_str) {
            parts.push(m.to_string());
        }
        cur = ev.get("chain").and_then(|c| c.get("event"));
    }
    parts.join(": ")
}

/// The diff a module returned (`diff: {before, after, ...}` or a list of them, or `prepared`).
fn diff_of(r: &Map<String, Json>, fallback: &str) -> Option<super::FileDiff> {
    let d = r.get("diff")?;
    let one = match d {
        Json::Array(v) => v.first()?.clone(),
        other => other.clone(),
    };
    let text = |k: &str| one.get(k).map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| serde_json::to_string_pretty(v).unwrap_or_default()));
    let path = one.get("after_header").or_else(|| one.get("before_header")).and_then(Json::as_str).unwrap_or(fallback).to_string();
    if let Some(p) = one.get("prepared").and_then(Json::as_str) {
        return Some(super::FileDiff { path, before: None, after: None, mode: None, prepared: Some(p.to_string()) });
    }
    let (before, after) = (text("before"), text("after"));
    if before.is_none() && after.is_none() {
        return None;
    }
    Some(super::FileDiff { path, before: before.map(String::into_bytes), after: after.map(String::into_bytes), mode: None, prepared: None })
}

/// A module from the operator's installed Ansible (a collection, `library/`, or an
/// ansible.builtin module recover does not build in), found and packed by ansible-core and run
/// with the host's Python.
///
/// Returns: what the module returns (`changed`, `msg`, `diff`, `invocation`, its own keys);
/// `ansible_facts` join the host's facts. A module that prints no JSON fails with
/// `MODULE FAILURE`, its stdout and stderr.
///
/// Check mode: the module's own check mode (with diff), which is also its preview before a
/// real run; a module without check mode is skipped in a dry-run, and asks before it runs.
#[derive(Documented)]
struct PythonDoc;

#[async_trait]
impl Module for PyModule {
    fn name(&self) -> &'static str {
        self.fqcn
    }
    fn doc(&self) -> &'static str {
        PythonDoc::DOCS
    }
    fn spec(&self) -> &'static [ArgSpec] {
        &[]
    }
    fn free_keys(&self) -> bool {
        true
    }
    async fn plan(&self, ctx: &StepCtx<'_>, args: &Json) -> Result<Plan, StepError> {
        if read_only(self.fqcn) {
            return Ok(Plan::done(Json::Object(self.call(ctx, args, ctx.check, true).await?)));
        }
        let r = self.call(ctx, args, true, true).await?;
        let no_check = r.get("skipped") == Some(&Json::Bool(true)) && r.get("msg").and_then(Json::as_str).is_some_and(|m| m.contains("check mode"));
        let changed = r.get("changed") == Some(&Json::Bool(true));
        if !no_check && !changed {
            // Nothing to change: the real run still runs it (its result may hold data), unasked.
            return Ok(Plan { run_anyway: true, result: r, args: Some(args.clone()), ..Plan::default() });
        }
        let paths = self.existing_paths(ctx, args).await?;
        let state = args.get("state").and_then(Json::as_str).unwrap_or_default();
        let mut plan = Plan { diff: diff_of(&r, self.fqcn), ..Plan::default() };
        let what = r.get("msg").and_then(Json::as_str).filter(|m| !m.is_empty()).map(|m| format!(": {m}")).unwrap_or_default();
        if no_check {
            plan.changes.push(format!("run {} (it has no check mode: what it changes cannot be previewed)", self.fqcn));
            plan.check_skip = true;
            plan.note = Some(format!("{} does not support check mode; the real run asks first", self.fqcn));
        } else {
            plan.changes.push(format!("{} would change{what}", self.fqcn));
            plan.result = r;
        }
        plan.args = Some(args.clone());
        // recover cannot tell what a module it did not write changes beyond its paths (a
        // firewall rule, a kernel setting, a database role): every changing step asks at its
        // tier (the baseline's, by path or module, else its default; one with no check mode
        // never below STANDARD_HITL), after a verified backup of the paths it names that exist.
        let reason = match (no_check, paths.is_empty()) {
            (true, _) => format!("runs {} (no check mode)", self.fqcn),
            (false, false) => format!("{} changes {}", self.fqcn, paths.join(", ")),
            (false, true) if REMOVING.contains(&state) => format!("{} state={state}", self.fqcn),
            (false, true) => format!("{} changes the host{what}", self.fqcn),
        };
        plan.destructive = Some(crate::safety::Destructive { reason, paths, tier: no_check.then_some(crate::safety::Tier::StandardHitl), ..Default::default() });
        Ok(plan)
    }
    async fn apply(&self, ctx: &StepCtx<'_>, plan: Plan) -> Result<Outcome, StepError> {
        let r = self.call(ctx, plan.args.as_ref().unwrap_or(&Json::Null), false, false).await?;
        Ok(Outcome { changed: r.get("changed") == Some(&Json::Bool(true)), result: r })
    }
}
