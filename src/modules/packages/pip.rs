//! `pip`: Python packages installed, upgraded, reinstalled or removed by the host's pip, in a
//! virtualenv it makes when missing (`virtualenv_command`, e.g. `python3 -m venv`), as
//! ansible-core's module runs it: the same pip command line, its check mode (a package is
//! present when `pip list --format=freeze` lists a version its specifier accepts; extra
//! arguments, requirements and `latest` count as a change) and its `changed` (pip said
//! "Successfully installed" or "Successfully uninstalled"). Removing, upgrading or reinstalling
//! packages is destructive; in a virtualenv the backup covers the virtualenv.

use async_trait::async_trait;
use documented::Documented;
use serde::Deserialize;
use serde_json::{json, Value as Json};

use crate::error::{SResult, SourceError};
use crate::modules::{de, opt, typed, ArgSpec, Kind, Module, Outcome, Plan, StepCtx, StepError};
use crate::playbook::Task;
use crate::transport::{quote, Cmd};

/// `pip`: Python packages installed, upgraded or removed with pip, in the system or a virtualenv
/// (made when missing).
///
/// Returns: `cmd`, `name`, `requirements`, `version`, `virtualenv`, `stdout`, `stderr`.
///
/// Check mode: compares the installed versions and reports what would change; installs nothing.
#[derive(Documented)]
pub struct Pip;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    state: Option<String>,
    #[serde(default, deserialize_with = "de::list_loose")]
    name: Vec<String>,
    version: Option<Json>,
    requirements: Option<String>,
    virtualenv: Option<String>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    virtualenv_site_packages: Option<bool>,
    virtualenv_command: Option<String>,
    virtualenv_python: Option<String>,
    extra_args: Option<String>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    editable: Option<bool>,
    chdir: Option<String>,
    executable: Option<String>,
    umask: Option<Json>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    break_system_packages: Option<bool>,
}

const SPEC: &[ArgSpec] = &[
    opt("state", Kind::Str).default("present").doc("`present`, `latest`, `absent` or `forcereinstall`."),
    opt("name", Kind::Any).doc("Packages (with version specifiers), or URLs."),
    opt("version", Kind::Any).doc("The version of the one package in `name`."),
    opt("requirements", Kind::Str).doc("A requirements file on the host."),
    opt("virtualenv", Kind::Str).doc("A virtualenv to install into (made when missing)."),
    opt("virtualenv_site_packages", Kind::Bool).default("false").doc("Let the virtualenv see the system's packages."),
    opt("virtualenv_command", Kind::Str).default("virtualenv").doc("The command that makes the virtualenv."),
    opt("virtualenv_python", Kind::Str).doc("The Python the virtualenv is made with."),
    opt("extra_args", Kind::Str).doc("More pip arguments."),
    opt("editable", Kind::Bool).default("false").doc("Install in editable mode."),
    opt("chdir", Kind::Str).doc("The folder to run pip in."),
    opt("executable", Kind::Str).doc("The pip program."),
    opt("umask", Kind::Any).doc("The umask pip runs with."),
    opt("break_system_packages", Kind::Bool).default("false").doc("Pass `--break-system-packages` (PEP 668)."),
];

/// A requirement as ansible-core's `Package` reads it: a name and version specifiers.
struct Req {
    text: String,
    name: String,
    specs: Vec<(String, String)>,
}

/// PEP 503's normal form of a project name.
fn canonical(name: &str) -> String {
    regex::Regex::new(r"[-_.]+").unwrap().replace_all(name, "-").to_lowercase()
}

fn parse_req(text: &str) -> Req {
    let re = regex::Regex::new(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*(.*)$").unwrap();
    let (name, rest) = match re.captures(text) {
        Some(c) => (c[1].to_string(), c.get(3).map(|m| m.as_str().to_string()).unwrap_or_default()),
        None => (text.to_string(), String::new()),
    };
    let spec_re = regex::Regex::new(r"^\s*(===|~=|==|!=|<=|>=|<|>)\s*(\S+?)\s*$").unwrap();
    let specs = rest
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .filter_map(|s| spec_re.captures(s).map(|c| (c[1].to_string(), c[2].to_string())))
        .collect();
    Req { text: text.trim().to_string(), name, specs }
}

/// A release as numbers (`1.10.2` -> [1, 10, 2]); what follows the numbers is left out.
fn release(v: &str) -> Vec<u64> {
    v.trim_start_matches('v').split('.').map_while(|p| {
        let digits: String = p.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    }).collect()
}

fn cmp_release(a: &[u64], b: &[u64]) -> std::cmp::Ordering {
    let n = a.len().max(b.len());
    (0..n).map(|i| a.get(i).unwrap_or(&0).cmp(b.get(i).unwrap_or(&0))).find(|o| o.is_ne()).unwrap_or(std::cmp::Ordering::Equal)
}

/// Does version `v` satisfy `op spec` (PEP 440, releases compared by number)?
fn satisfies(v: &str, op: &str, spec: &str) -> bool {
    use std::cmp::Ordering::*;
    if op == "===" {
        return v == spec;
    }
    if let Some(prefix) = spec.strip_suffix(".*") {
        let (p, r) = (release(prefix), release(v));
        let m = r.len() >= p.len() && r[..p.len()] == p[..];
        return if op == "!=" { !m } else { m };
    }
    let o = cmp_release(&release(v), &release(spec));
    match op {
        "==" => o == Equal,
        "!=" => o != Equal,
        ">=" => o != Less,
        "<=" => o != Greater,
        ">" => o == Greater,
        "<" => o == Less,
        "~=" => {
            let s = release(spec);
            let keep = s.len().saturating_sub(1).max(1);
            o != Less && release(v).get(..keep) == s.get(..keep)
        }
        _ => false,
    }
}

/// Arguments pip takes one of (checked at load where literal, at run time always).
const PIP_EXCLUSIVE: [(&str, &str); 2] = [("name", "requirements"), ("executable", "virtualenv")];

#[async_trait]
impl Module for Pip {
    fn name(&self) -> &'static str {
        "pip"
    }
    fn doc(&self) -> &'static str {
        Self::DOCS
    }
    fn spec(&self) -> &'static [ArgSpec] {
        SPEC
    }
    fn validate(&self, task: &Task) -> SResult<()> {
        let has = |k: &str| task.args.get(k).is_some_and(|v| !v.is_null());
        if !has("name") && !has("requirements") {
            return Err(SourceError::new(task.module_span.clone(), "pip: one of the following is required: name, requirements"));
        }
        for (a, b) in PIP_EXCLUSIVE {
            if crate::modules::certainly_given(task, a) && crate::modules::certainly_given(task, b) {
                return Err(SourceError::new(task.arg_span(b), format!("pip: parameters are mutually exclusive: {a}|{b}")));
            }
        }
        Ok(())
    }
    async fn plan(&self, ctx: &StepCtx<'_>, args: &Json) -> Result<Plan, StepError> {
        crate::modules::exclusive("pip", args, &PIP_EXCLUSIVE)?;
        let a: Args = typed("pip", args)?;
        let state = a.state.clone().unwrap_or_else(|| "present".into());
        let verb: &[&str] = match state.as_str() {
            "present" => &["install"],
            "absent" => &["uninstall", "-y"],
            "latest" => &["install", "-U"],
            "forcereinstall" => &["install", "-U", "--force-reinstall"],
            other => return Err(StepError::failed(format!("value of state must be one of: present, absent, latest, forcereinstall, got: {other}"))),
        };
        let version = a.version.as_ref().filter(|v| !v.is_null()).map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()));
        if state == "latest" && version.is_some() {
            return Err(StepError::failed("version is incompatible with state=latest"));
        }
        let chdir = a.chdir.clone().unwrap_or_else(|| "/tmp".into());
        let env = a.virtualenv.clone().map(|e| if a.chdir.is_some() && !e.starts_with('/') { format!("{}/{e}", chdir.trim_end_matches('/')) } else { e });
        let umask = match &a.umask {
            None | Some(Json::Null) => None,
            Some(Json::String(s)) => Some(u32::from_str_radix(s.trim(), 8).map_err(|_| StepError::failed("umask must be an octal integer"))?),
            Some(Json::Number(n)) => n.as_u64().map(|n| n as u32),
            Some(_) => return Err(StepError::failed("umask must be an octal integer")),
        };
        let mut reqs: Vec<Req> = a.name.iter().map(|n| parse_req(n)).collect();
        if let Some(v) = &version {
            if reqs.len() > 1 {
                return Err(StepError::failed("'version' argument is ambiguous when installing multiple package distributions. Please specify version restrictions next to each package in 'name' argument."));
            }
            if reqs.first().is_some_and(|r| !r.specs.is_empty()) {
                return Err(StepError::failed("The 'version' argument conflicts with any version specifier provided along with a package name. Please keep the version specifier, but remove the 'version' argument."));
            }
            if let Some(r) = reqs.first_mut() {
                let spec = if v.starts_with(|c: char| "=!<>~".contains(c)) { v.clone() } else { format!("=={v}") };
                *r = parse_req(&format!("{}{spec}", r.name));
            }
        }
        let prefix = umask.map(|u| format!("umask {u:03o}; ")).unwrap_or_default();
        let cd = format!("cd {} && ", quote::quote(&chdir));
        let mut plan = Plan::ok();
        // The virtualenv, made when it has no bin/activate.
        let mut venv_cmd = None;
        if let Some(e) = &env {
            let exists = ctx.run(Cmd::argv(["test", "-f", &format!("{e}/bin/activate")])).await?.rc == 0;
            if !exists {
                if ctx.check {
                    plan.changes.push(format!("create the virtualenv {e}"));
                    return Ok(plan);
                }
                let vc = a.virtualenv_command.clone().unwrap_or_else(|| "virtualenv".into());
                let words = crate::template::words::split(&vc).map_err(|e| StepError::failed(format!("virtualenv_command is not a command line: {vc}: {e}")))?;
                let is_venv = words.iter().any(|w| w == "venv" || w == "pyvenv" || w.ends_with("/pyvenv"));
                let mut cmd: Vec<String> = words;
                if a.virtualenv_site_packages.unwrap_or(false) {
                    cmd.push("--system-site-packages".into());
                }
                if let Some(p) = &a.virtualenv_python {
                    if is_venv {
                        return Err(StepError::failed("virtualenv_python should not be used when using the venv module or pyvenv as virtualenv_command"));
                    }
                    cmd.push(format!("-p{p}"));
                } else if !is_venv {
                    cmd.push("-p/usr/bin/python3".into());
                }
                cmd.push(e.clone());
                let line = cmd.iter().map(|w| quote::quote(w)).collect::<Vec<_>>().join(" ");
                venv_cmd = Some(format!("{prefix}{cd}{line}"));
                plan.changes.push(format!("create the virtualenv {e}"));
            }
        }
        let pip = match (&a.executable, &env) {
            (Some(x), _) => x.clone(),
            (None, Some(e)) => format!("{e}/bin/pip"),
            (None, None) => {
                let found = ctx.run(Cmd::shell("command -v pip3 || command -v pip")).await?;
                if found.rc != 0 {
                    return Err(StepError::failed("Unable to find any of pip3 to use.  pip needs to be installed."));
                }
                found.stdout_str().lines().next().unwrap_or("pip3").to_string()
            }
        };
        let mut cmd: Vec<String> = vec![pip.clone()];
        cmd.extend(verb.iter().map(|s| s.to_string()));
        let mut extra = a.extra_args.clone();
        if a.editable.unwrap_or(false) {
            let mut words: Vec<String> = extra.as_deref().map(|x| x.split(' ').map(str::to_string).collect()).unwrap_or_default();
            if !words.iter().any(|w| w == "-e") {
                words.push("-e".into());
            }
            extra = Some(words.join(" "));
        }
        if let Some(x) = &extra {
            cmd.extend(crate::template::words::split(x).map_err(|e| StepError::failed(format!("extra_args is not a command line: {x}: {e}")))?);
        }
        if !reqs.is_empty() {
            cmd.extend(reqs.iter().map(|r| if version.is_some() { format!("{}{}", r.name, r.specs.iter().map(|(o, v)| format!("{o}{v}")).collect::<Vec<_>>().join(",")) } else { r.text.clone() }));
        } else if let Some(r) = &a.requirements {
            cmd.extend(["-r".to_string(), r.clone()]);
        }
        let env_prefix = if a.break_system_packages.unwrap_or(false) { "PIP_BREAK_SYSTEM_PACKAGES=1 " } else { "" };
        let path_prefix = env.as_ref().map(|e| format!("PATH={}/bin:\"$PATH\" ", quote::quote(e))).unwrap_or_default();
        let line = format!("{prefix}{cd}{env_prefix}{path_prefix}{}", cmd.iter().map(|w| quote::quote(w)).collect::<Vec<_>>().join(" "));
        plan.result.insert("cmd".into(), json!(cmd));
        // What is installed now (`pip list --format=freeze`), for check mode and the plan.
        let always = extra.is_some() || a.requirements.is_some() || state == "latest" || state == "forcereinstall" || reqs.is_empty();
        let mut changed = venv_cmd.is_some() || always;
        if !changed || ctx.check {
            let listing = if venv_cmd.is_some() {
                String::new()
            } else {
                let out = ctx.run(Cmd::shell(format!("{cd}{} list --format=freeze 2>/dev/null || {cd}{} freeze", quote::quote(&pip), quote::quote(&pip)))).await?;
                out.stdout_str()
            };
            let installed: Vec<(String, String)> = listing.lines().filter(|l| !l.starts_with("You are using") && !l.starts_with("You should consider")).filter_map(|l| l.split_once("==")).map(|(n, v)| (canonical(n), v.trim().to_string())).collect();
            let present = |r: &Req| installed.iter().any(|(n, v)| *n == canonical(&r.name) && r.specs.iter().all(|(o, s)| satisfies(v, o, s)));
            if !always {
                changed = reqs.iter().any(|r| (state == "present" && !present(r)) || (state == "absent" && present(r)));
            }
            if ctx.check {
                plan.result.insert("stdout".into(), json!(listing));
            }
        }
        if !changed {
            return Ok(plan);
        }
        plan.changes.push(format!("pip {} {}", verb.join(" "), if reqs.is_empty() { a.requirements.clone().unwrap_or_default() } else { a.name.join(" ") }));
        if ctx.check {
            return Ok(plan);
        }
        if let Some(v) = venv_cmd {
            plan.commands.push(Cmd::shell(v).label("create the virtualenv"));
        }
        plan.commands.push(Cmd::shell(format!("{line} 2>&1")).label(cmd.join(" ")));
        if state != "present" {
            plan.destructive = Some(crate::safety::Destructive {
                reason: format!("pip {}: package files replaced or removed", verb.join(" ")),
                paths: env.iter().cloned().collect(),
                ..Default::default()
            });
        }
        for (k, v) in [("name", json!(a.name)), ("version", json!(version)), ("state", json!(state)), ("requirements", json!(a.requirements)), ("virtualenv", json!(env))] {
            plan.result.insert(k.into(), v);
        }
        plan.result.insert("_venv".into(), json!(env.is_some() && plan.commands.len() > 1));
        Ok(plan)
    }
    async fn apply(&self, ctx: &StepCtx<'_>, mut plan: Plan) -> Result<Outcome, StepError> {
        let venv_created = plan.result.remove("_venv").and_then(|v| v.as_bool()).unwrap_or(false);
        let state = plan.result.get("state").and_then(Json::as_str).unwrap_or("present").to_string();
        let mut result = plan.result;
        let mut out_all = String::new();
        let n = plan.commands.len();
        let mut pip_out = String::new();
        for (i, cmd) in plan.commands.into_iter().enumerate() {
            let shown = cmd.display();
            let out = ctx.run(cmd).await?;
            let text = out.stdout_str();
            out_all.push_str(&text);
            if i + 1 == n {
                pip_out = text.clone();
                if out.rc == 1 && state == "absent" && text.contains("not installed") {
                } else if out.rc != 0 {
                    return Err(StepError::Failed { msg: format!("stdout: {text}\n:stderr: "), result: json!({"cmd": shown, "rc": out.rc, "stdout": text}) });
                }
            } else if out.rc != 0 {
                return Err(StepError::failed(crate::modules::command_failure(ctx.host, &shown, &out)));
            }
        }
        let changed = venv_created || if state == "absent" { pip_out.contains("Successfully uninstalled") } else { pip_out.contains("Successfully installed") };
        result.insert("stdout".into(), json!(out_all));
        result.insert("stderr".into(), json!(""));
        Ok(Outcome { changed, result })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specifiers_as_pep_440_compares_releases() {
        assert!(satisfies("1.10", ">", "1.9"));
        assert!(satisfies("2.0", "==", "2"));
        assert!(satisfies("1.4.5", "~=", "1.4.2"));
        assert!(!satisfies("1.5", "~=", "1.4.2"));
        assert!(satisfies("1.2.3", "==", "1.2.*"));
        assert!(!satisfies("1.3", "==", "1.2.*"));
        let r = parse_req("Rt_Pkg[extra] >=1.0, <2");
        assert_eq!((canonical(&r.name).as_str(), r.specs.len()), ("rt-pkg", 2));
    }
}
