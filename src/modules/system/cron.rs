//! `cron`: one named job (`#Ansible: NAME` above its line) or one variable of a user's crontab
//! or of a cron file, present or absent, disabled (commented out) or special (`@reboot`). The
//! rules are ansible-core's, line by line: a job is found by its comment, or by its exact line
//! (which then gets the comment); all entries of one name are replaced; a cron file left with
//! no line is removed. A user's crontab is read with `crontab -l` and installed with
//! `crontab -`; a cron file is written through [`crate::modules::write`] (diff, temp file, rename).
//! Changing or removing what a crontab already holds is an overwrite for the safety engine.

use async_trait::async_trait;
use documented::Documented;
use serde::Deserialize;
use serde_json::{json, Value as Json};

use crate::error::{SResult, SourceError};
use crate::modules::support::write::{plan_write_over, WriteSpec};
use crate::modules::{de, opt, req, typed, ArgSpec, Kind, Module, Plan, StepCtx, StepError};
use crate::playbook::Task;
use crate::pyre;
use crate::transport::{quote, Cmd};

/// `cron`: a job (or an environment variable) in a user's crontab or a file in `/etc/cron.d`, named
/// by its `#Ansible:` comment.
///
/// Returns: `jobs`, `envs`, `state`, `cron_file`; `backup_file` with `backup: true`.
///
/// Check mode: reads the crontab and shows the diff; changes nothing.
#[derive(Documented)]
pub struct Cron;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    name: String,
    user: Option<String>,
    #[serde(alias = "value")]
    job: Option<String>,
    cron_file: Option<String>,
    state: Option<String>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    backup: Option<bool>,
    minute: Option<Json>,
    hour: Option<Json>,
    #[serde(alias = "dom")]
    day: Option<Json>,
    month: Option<Json>,
    #[serde(alias = "dow")]
    weekday: Option<Json>,
    special_time: Option<String>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    disabled: Option<bool>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    env: Option<bool>,
    insertafter: Option<String>,
    insertbefore: Option<String>,
}

const SPEC: &[ArgSpec] = &[
    req("name", Kind::Str).doc("The job's name (its `#Ansible:` comment), or the variable's with `env`."),
    opt("user", Kind::Str).doc("Whose crontab (the connection user's otherwise)."),
    opt("job", Kind::Str).aliases(&["value"]).doc("The command (or the variable's value with `env`)."),
    opt("cron_file", Kind::Str).doc("A file in `/etc/cron.d` instead of a user's crontab."),
    opt("state", Kind::Str).default("present").doc("`present` or `absent`."),
    opt("backup", Kind::Bool).default("false").doc("Keep a copy of the crontab it changes (recover always takes its verified backup)."),
    opt("minute", Kind::Any).default("*").doc("The minute field."),
    opt("hour", Kind::Any).default("*").doc("The hour field."),
    opt("day", Kind::Any).aliases(&["dom"]).default("*").doc("The day-of-month field."),
    opt("month", Kind::Any).default("*").doc("The month field."),
    opt("weekday", Kind::Any).aliases(&["dow"]).default("*").doc("The day-of-week field."),
    opt("special_time", Kind::Str).doc("`reboot`, `hourly`, `daily`, `weekly`, `monthly`, `yearly` or `annually`."),
    opt("disabled", Kind::Bool).default("false").doc("Keep the job commented out."),
    opt("env", Kind::Bool).default("false").doc("Manage an environment variable line, not a job."),
    opt("insertafter", Kind::Str).doc("With `env`: put the variable after this one."),
    opt("insertbefore", Kind::Str).doc("With `env`: put the variable before this one."),
];

const SPECIAL: &[&str] = &["reboot", "yearly", "annually", "monthly", "weekly", "daily", "hourly"];
const COMMENT: &str = "#Ansible: ";

/// A time field as ansible-core's `type='str'` makes it (`5` is `"5"`).
fn field(v: &Option<Json>) -> String {
    match v {
        None | Some(Json::Null) => "*".into(),
        Some(Json::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// The lines of a crontab and ansible-core's edits of them (`CronTab` in its module).
struct Tab {
    lines: Vec<String>,
    cron_file: bool,
}

impl Tab {
    /// `find_job`: the line under `#Ansible: name`; else the exact `job` line, which then
    /// gets the comment (the third element: it must be rewritten).
    fn find_job(&mut self, name: &str, job: Option<&str>) -> Option<(String, bool)> {
        let mut comment: Option<String> = None;
        for l in &self.lines {
            if let Some(c) = &comment {
                if c == name {
                    return Some((l.clone(), false));
                }
                comment = None;
            } else if let Some(rest) = l.strip_prefix(COMMENT) {
                comment = Some(rest.to_string());
            }
        }
        let job = job?;
        let n = self.lines.len();
        for i in 0..n {
            if self.lines[i] != job {
                continue;
            }
            // Python's `lines[i - 1]` is the last line when i is 0.
            let prev = self.lines[(i + n - 1) % n].clone();
            if !prev.starts_with(COMMENT) {
                self.lines.insert(i, format!("{COMMENT}{name}"));
                return Some((job.to_string(), true));
            } else if !name.is_empty() && prev == format!("{COMMENT}None") {
                let at = (i + n - 1) % n;
                self.lines[at] = format!("{COMMENT}{name}");
                return Some((job.to_string(), true));
            }
        }
        None
    }
    /// `_update_job`: every `#Ansible: name` entry replaced by `job` (or dropped).
    fn update_job(&mut self, name: &str, job: Option<&str>) {
        let own = format!("{COMMENT}{name}");
        let mut out = Vec::new();
        let mut comment = false;
        for l in std::mem::take(&mut self.lines) {
            if comment {
                if let Some(j) = job {
                    out.push(own.clone());
                    out.push(j.to_string());
                }
                comment = false;
            } else if l == own {
                comment = true;
            } else {
                out.push(l);
            }
        }
        self.lines = out;
    }
    fn find_env(&self, re: &crate::pyre::Regex) -> Option<(usize, String)> {
        self.lines.iter().enumerate().find(|(_, l)| re.is_match(l.as_bytes())).map(|(i, l)| (i, l.clone()))
    }
    fn update_env(&mut self, re: &crate::pyre::Regex, decl: Option<&str>) {
        let lines = std::mem::take(&mut self.lines);
        for l in lines {
            if re.is_match(l.as_bytes()) {
                if let Some(d) = decl {
                    self.lines.push(d.to_string());
                }
            } else {
                self.lines.push(l);
            }
        }
    }
    fn jobnames(&self) -> Vec<String> {
        self.lines.iter().filter_map(|l| l.strip_prefix(COMMENT).map(str::to_string)).collect()
    }
    fn envnames(&self) -> Vec<String> {
        let re = regex::Regex::new(r"^\S+=").unwrap();
        self.lines.iter().filter(|l| re.is_match(l)).map(|l| l.split('=').next().unwrap_or("").to_string()).collect()
    }
    fn render(&self) -> String {
        let r = self.lines.join("\n");
        if r.is_empty() {
            r
        } else {
            format!("{}\n", r.trim_end_matches(['\r', '\n']))
        }
    }
    fn is_empty(&self) -> bool {
        self.lines.iter().all(|l| l.trim().is_empty())
    }
}

/// What `crontab -l` printed, without the header lines some crons add (ansible-core drops
/// them from the first three lines and from the diff's "before").
fn strip_header(out: &str) -> (Vec<String>, String) {
    let heads = [
        regex::Regex::new(r"^# DO NOT EDIT THIS FILE - edit the master and reinstall\.").unwrap(),
        regex::Regex::new(r"^# \(/tmp/.*installed on.*\)").unwrap(),
        regex::Regex::new(r"^# \(.*version.*\)").unwrap(),
    ];
    let mut existing = out.to_string();
    let mut lines = Vec::new();
    for (count, l) in crate::template::text::py_splitlines(out).into_iter().enumerate() {
        if count > 2 || !heads.iter().any(|h| h.is_match(&l)) {
            lines.push(l);
        } else if let Some(at) = existing.find(&l) {
            let mut end = at + l.len();
            if existing[end..].starts_with(['\r', '\n']) {
                end += 1;
            }
            existing.replace_range(at..end, "");
        }
    }
    (lines, existing)
}

/// `crontab` for the user, with `-u` only when it is another user than the one running it.
fn crontab_cmd(user: &Option<String>, action: &str) -> String {
    match user {
        Some(u) => {
            let q = quote::quote(u);
            format!("if [ \"$(id -un)\" = {q} ]; then crontab {action}; else crontab -u {q} {action}; fi")
        }
        None => format!("crontab {action}"),
    }
}

#[async_trait]
impl Module for Cron {
    fn name(&self) -> &'static str {
        "cron"
    }
    fn doc(&self) -> &'static str {
        Self::DOCS
    }
    fn spec(&self) -> &'static [ArgSpec] {
        SPEC
    }
    fn validate(&self, task: &Task) -> SResult<()> {
        let get = |k: &str| task.args.get(k).and_then(Json::as_str).filter(|s| !crate::template::is_template(s));
        if let Some(s) = get("special_time") {
            if !SPECIAL.contains(&s) {
                return Err(SourceError::new(task.arg_span("special_time"), format!("cron: value of special_time must be one of: {}, got: {s}", SPECIAL.join(", "))));
            }
        }
        if let Some(s) = get("state") {
            if !["present", "absent"].contains(&s) {
                return Err(SourceError::new(task.arg_span("state"), format!("cron: value of state must be one of: present, absent, got: {s}")));
            }
        }
        if crate::modules::certainly_given(task, "insertafter") && crate::modules::certainly_given(task, "insertbefore") {
            return Err(SourceError::new(task.arg_span("insertbefore"), "cron: parameters are mutually exclusive: insertafter|insertbefore"));
        }
        if get("cron_file") == Some("/etc/crontab") {
            return Err(SourceError::new(task.arg_span("cron_file"), "cron: will not manage /etc/crontab via cron_file (it is the system's own table)"));
        }
        Ok(())
    }
    async fn plan(&self, ctx: &StepCtx<'_>, args: &Json) -> Result<Plan, StepError> {
        crate::modules::exclusive("cron", args, &[("insertafter", "insertbefore")])?;
        let a: Args = typed("cron", args)?;
        let state = a.state.clone().unwrap_or_else(|| "present".into());
        let install = state == "present";
        let times = [field(&a.minute), field(&a.hour), field(&a.day), field(&a.month), field(&a.weekday)];
        let path = a.cron_file.as_ref().map(|f| if f.starts_with('/') { f.clone() } else { format!("/etc/cron.d/{f}") });
        if path.as_deref() == Some("/etc/crontab") {
            return Err(StepError::failed("Will not manage /etc/crontab via cron_file, see documentation."));
        }
        let mut warnings = Vec::new();
        if let Some(f) = &a.cron_file {
            let base = f.rsplit('/').next().unwrap_or(f);
            if !regex::Regex::new(r"(?i)^[A-Z0-9_-]+$").unwrap().is_match(base) {
                warnings.push(format!("Filename portion of cron_file (\"{base}\") should consist solely of upper- and lower-case letters, digits, underscores, and hyphens"));
            }
        }
        // The crontab as it is: a cron file's bytes, or what `crontab -l` prints.
        let mut login = String::new();
        let (file_state, existing, lines) = match &path {
            Some(p) => {
                let (st, bytes) = ctx.stat_read(p).await?;
                crate::modules::support::write::refuse_dir(&st, p)?;
                let text = String::from_utf8_lossy(bytes.as_deref().unwrap_or_default()).into_owned();
                let lines = crate::template::text::py_splitlines(&text);
                (Some((st, bytes)), text, lines)
            }
            None => {
                let out = ctx.run(Cmd::shell(format!("id -un >&2; {}", crontab_cmd(&a.user, "-l")))).await?;
                let err = out.stderr_str();
                let (me, err) = err.split_once('\n').unwrap_or((err.as_str(), ""));
                login = me.trim().to_string();
                if out.rc == 127 {
                    return Err(StepError::failed(format!("Failed to find required executable \"crontab\": {}", err.trim())));
                }
                if out.rc != 0 && out.rc != 1 {
                    return Err(StepError::failed(format!("Unable to read crontab: {}", err.trim())));
                }
                let (lines, existing) = strip_header(&out.stdout_str());
                (None, existing, lines)
            }
        };
        if a.special_time.is_some() && times.iter().any(|t| t != "*") {
            return Err(StepError::failed("You cannot combine special_time with any of the time or day/date parameters."));
        }
        if install {
            if path.is_some() && a.user.is_none() {
                return Err(StepError::failed("To use cron_file=... parameter you must specify user=... as well"));
            }
            if a.job.is_none() {
                return Err(StepError::failed("You must specify 'job' to install a new cron job or variable"));
            }
            if (a.insertafter.is_some() || a.insertbefore.is_some()) && !a.env.unwrap_or(false) {
                return Err(StepError::failed("Insertafter and insertbefore parameters are valid only with env=yes"));
            }
        }
        let mut tab = Tab { lines, cron_file: path.is_some() };
        let mut changed = false;
        let name = &a.name;
        let env_re = |n: &str| pyre::compile(&format!("^{n}=")).map_err(|e| StepError::failed(format!("cron: {e}")));
        if a.env.unwrap_or(false) {
            if name.contains(' ') {
                return Err(StepError::failed("Invalid name for environment variable"));
            }
            let decl = format!("{name}=\"{}\"", a.job.clone().unwrap_or_default());
            let re = env_re(name)?;
            let old = tab.find_env(&re);
            if install {
                match old {
                    None => {
                        let other = a.insertafter.as_ref().or(a.insertbefore.as_ref());
                        match other {
                            None => tab.lines.insert(0, decl),
                            Some(o) => match tab.find_env(&env_re(o)?) {
                                Some((i, _)) => tab.lines.insert(if a.insertafter.is_some() { i + 1 } else { i }, decl),
                                None => return Err(StepError::failed(format!("Variable named '{o}' not found."))),
                            },
                        }
                        changed = true;
                    }
                    Some((_, l)) if l != decl => {
                        tab.update_env(&re, Some(&decl));
                        changed = true;
                    }
                    Some(_) => {}
                }
            } else if old.is_some() {
                tab.update_env(&re, None);
                changed = true;
            }
        } else if install {
            let job = a.job.clone().unwrap_or_default();
            let job = job.trim_matches(['\r', '\n']);
            if job.contains(['\r', '\n']) {
                warnings.push("Job should not contain line breaks".into());
            }
            let prefix = if a.disabled.unwrap_or(false) { "#" } else { "" };
            let user = a.user.clone().unwrap_or_default();
            let line = match (&a.special_time, tab.cron_file) {
                (Some(s), true) => format!("{prefix}@{s} {user} {job}"),
                (Some(s), false) => format!("{prefix}@{s} {job}"),
                (None, true) => format!("{prefix}{} {user} {job}", times.join(" ")),
                (None, false) => format!("{prefix}{} {job}", times.join(" ")),
            };
            match tab.find_job(name, Some(&line)) {
                None => {
                    tab.lines.push(format!("{COMMENT}{name}"));
                    tab.lines.push(line);
                    changed = true;
                }
                Some((old, rewrite)) => {
                    if old != line || rewrite {
                        tab.update_job(name, Some(&line));
                        changed = true;
                    }
                }
            }
        } else if tab.find_job(name, None).is_some() {
            tab.update_job(name, None);
            changed = true;
            if let (Some(p), true) = (&path, tab.is_empty()) {
                // The cron file holds nothing more: ansible-core removes it.
                let mut plan = Plan::ok();
                plan.result.insert("cron_file".into(), json!(a.cron_file));
                plan.result.insert("state".into(), json!(state));
                let exists = file_state.as_ref().is_some_and(|(st, _)| st.is_some());
                if exists {
                    plan.changes.push(format!("remove {p} (its last job is gone)"));
                    plan.commands.push(Cmd::shell(format!("rm -f {}", quote::quote(p))));
                    plan.diff = Some(crate::modules::FileDiff { path: p.clone(), before: Some(existing.clone().into_bytes()), after: None, mode: None, prepared: None });
                    plan.destructive = Some(crate::safety::Destructive { reason: format!("deletes {p}"), paths: vec![p.clone()], ..Default::default() });
                }
                return Ok(plan);
            }
        }
        if !changed && !existing.is_empty() && !existing.ends_with(['\r', '\n']) {
            changed = true;
        }
        let mut result = serde_json::Map::new();
        result.insert("jobs".into(), json!(tab.jobnames()));
        result.insert("envs".into(), json!(tab.envnames()));
        if let Some(f) = &a.cron_file {
            result.insert("cron_file".into(), json!(f));
        }
        if !warnings.is_empty() {
            result.insert("warnings".into(), json!(warnings));
        }
        let mut plan = Plan { result, note: (!warnings.is_empty()).then(|| format!("[WARNING]: {}", warnings.join("; "))), ..Plan::ok() };
        if !changed {
            return Ok(plan);
        }
        let after = tab.render();
        let backup = (a.backup.unwrap_or(false) && !ctx.check).then(|| format!("/tmp/crontab{}", &uuid::Uuid::new_v4().simple().to_string()[..8]));
        if let Some(b) = &backup {
            plan.commands.push(Cmd::shell(format!("set -C; cat > {}", quote::quote(b))).stdin(existing.clone().into_bytes()));
            plan.result.insert("backup_file".into(), json!(b));
        }
        let what = path.clone().unwrap_or_else(|| match &a.user {
            Some(u) => format!("crontab for user \"{u}\""),
            None => "crontab".into(),
        });
        match (&path, file_state) {
            (Some(p), Some(current)) => {
                let spec = WriteSpec { dest: p.clone(), content: after.clone().into_bytes(), mode: None, owner: None, group: None, validate: None, validate_in_place: false, backup: None };
                let w = plan_write_over(ctx, spec, current)?;
                plan.commands.extend(w.commands);
                plan.destructive = w.destructive;
            }
            _ => {
                plan.commands.push(Cmd::shell(crontab_cmd(&a.user, "-")).stdin(after.clone().into_bytes()));
                if !existing.trim().is_empty() {
                    // Debian's spool: the backup reads it, so it needs root (become).
                    let spool = format!("/var/spool/cron/crontabs/{}", a.user.clone().unwrap_or(login));
                    plan.destructive = Some(crate::safety::Destructive { reason: format!("rewrites the {what}"), paths: vec![spool], ..Default::default() });
                }
            }
        }
        plan.changes.push(format!("update the {what}: job or variable '{name}' {}", if install { "set" } else { "removed" }));
        plan.diff = Some(crate::modules::FileDiff { path: what, before: Some(existing.into_bytes()), after: Some(after.into_bytes()), mode: None, prepared: None });
        Ok(plan)
    }
}
