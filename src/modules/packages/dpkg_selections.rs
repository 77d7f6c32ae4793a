//! `dpkg_selections`: a package's dpkg selection (`install`, `hold`, `deinstall`, `purge`), as
//! ansible-core's module reads (`dpkg --get-selections`) and sets it (`dpkg --set-selections`).
//! Marking a package `deinstall` or `purge` (apt then removes it) backs dpkg's status file up
//! first and asks for the tier's approval.

use async_trait::async_trait;
use documented::Documented;
use serde_json::{json, Value as Json};

use crate::modules::{req, ArgSpec, Kind, Module, Plan, StepCtx, StepError};
use crate::transport::Cmd;

/// `dpkg_selections`: a package's dpkg selection (`install`, `hold`, `deinstall`, `purge`).
///
/// Returns: `before`, `after`.
///
/// Check mode: reads the selection and reports whether it would change; changes nothing.
#[derive(Documented)]
pub struct DpkgSelections;

const SELECTIONS: &[&str] = &["install", "hold", "deinstall", "purge"];

#[async_trait]
impl Module for DpkgSelections {
    fn name(&self) -> &'static str {
        "dpkg_selections"
    }
    fn doc(&self) -> &'static str {
        Self::DOCS
    }
    fn spec(&self) -> &'static [ArgSpec] {
        const S: &[ArgSpec] = &[
            req("name", Kind::Str).doc("The package."),
            req("selection", Kind::Str).doc("`install`, `hold`, `deinstall` or `purge`."),
        ];
        S
    }
    async fn plan(&self, ctx: &StepCtx<'_>, args: &Json) -> Result<Plan, StepError> {
        let text = |k: &str| args.get(k).map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()));
        let name = text("name").ok_or_else(|| StepError::failed("dpkg_selections: missing required arguments: name"))?;
        let selection = text("selection").ok_or_else(|| StepError::failed("dpkg_selections: missing required arguments: selection"))?;
        if !SELECTIONS.contains(&selection.as_str()) {
            return Err(StepError::failed(format!("dpkg_selections: value of selection must be one of: {}, got: {selection}", SELECTIONS.join(", "))));
        }
        let out = ctx.run(Cmd::argv(["env", "LC_ALL=C", "dpkg", "--get-selections", name.as_str()])).await?;
        if out.rc != 0 {
            return Err(StepError::failed(format!("dpkg_selections: dpkg --get-selections {name} exited {}: {}", out.rc, out.stderr_str().trim())));
        }
        if out.stderr_str().contains("no packages found matching") {
            return Err(StepError::failed(format!("Failed to find package '{name}' to perform selection '{selection}'.")));
        }
        let stdout = out.stdout_str();
        let current = stdout.split_whitespace().nth(1).unwrap_or("not present").to_string();
        let result = json!({ "before": current, "after": selection });
        if current == selection {
            return Ok(Plan::done(result));
        }
        let mut plan = Plan::ok();
        plan.result = result.as_object().cloned().unwrap_or_default();
        plan.changes.push(format!("dpkg selection of {name}: {current} -> {selection}"));
        plan.commands.push(Cmd::argv(["dpkg", "--set-selections"]).stdin(format!("{name} {selection}\n").into_bytes()).label(format!("dpkg --set-selections: {name} {selection}")));
        if matches!(selection.as_str(), "deinstall" | "purge") {
            plan.destructive = Some(crate::safety::Destructive {
                reason: format!("marks {name} for removal ({selection}): apt removes it on its next run"),
                paths: vec!["/var/lib/dpkg/status".into()],
                ..Default::default()
            });
        }
        Ok(plan)
    }
}
