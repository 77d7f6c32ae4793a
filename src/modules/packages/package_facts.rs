//! `package_facts`: `ansible_facts.packages` from dpkg on an apt host, as ansible-core's
//! package_facts lists them: each installed package's name maps to a list of
//! `{name, version, arch, category, origin, source: apt}`. Read-only; `manager` other than
//! auto/apt is refused by name.

use async_trait::async_trait;
use documented::Documented;
use serde::Deserialize;
use serde_json::{json, Value as Json};

use crate::modules::{de, opt, typed, ArgSpec, Kind, Module, Plan, StepCtx, StepError};
use crate::transport::Cmd;

/// `package_facts`: the installed packages (dpkg on apt hosts), as ansible-core lists them.
///
/// Returns: `ansible_facts.packages` (name to a list of `name`, `version`, `arch`, `category`,
/// `origin`, `source`).
///
/// Check mode: runs as in a real run (read-only).
#[derive(Documented)]
pub struct PackageFacts;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(default, deserialize_with = "de::list_loose")]
    manager: Vec<String>,
    strategy: Option<String>,
}

#[async_trait]
impl Module for PackageFacts {
    fn name(&self) -> &'static str {
        "package_facts"
    }
    fn doc(&self) -> &'static str {
        Self::DOCS
    }
    fn spec(&self) -> &'static [ArgSpec] {
        const S: &[ArgSpec] = &[
            opt("manager", Kind::List).default("[auto]").doc("The package managers to list (`auto` and `apt`)."),
            opt("strategy", Kind::Str).default("first").doc("`first` or `all` managers found."),
        ];
        S
    }
    async fn plan(&self, ctx: &StepCtx<'_>, args: &Json) -> Result<Plan, StepError> {
        let a: Args = typed("package_facts", args)?;
        let _ = a.strategy;
        if let Some(m) = a.manager.iter().find(|m| !matches!(m.as_str(), "auto" | "apt")) {
            return Err(StepError::failed(format!("package_facts: manager {m} is not supported by recover (apt only)")));
        }
        let out = ctx.run(Cmd::shell("dpkg-query -W -f='${db:Status-Status}\\t${Package}\\t${Version}\\t${Architecture}\\t${Section}\\n' 2>/dev/null")).await?;
        if !out.ok() {
            return Err(StepError::failed("Could not detect a supported package manager from the following list: ['apt'], or the required Python library is not installed."));
        }
        let mut packages = serde_json::Map::new();
        for l in out.stdout_str().lines() {
            let f: Vec<&str> = l.split('\t').collect();
            if f.len() < 5 || f[0] != "installed" {
                continue;
            }
            let entry = json!({"name": f[1], "version": f[2], "arch": f[3], "category": f[4], "origin": "", "source": "apt"});
            match packages.get_mut(f[1]) {
                Some(Json::Array(list)) => list.push(entry),
                _ => {
                    packages.insert(f[1].to_string(), json!([entry]));
                }
            }
        }
        Ok(Plan::done(json!({"ansible_facts": {"packages": packages}})))
    }
}
