//! `add_host`: a host (and its groups and variables) added to the run's inventory, for the
//! rest of the play and the plays after it. As ansible-core, it runs once for the play (the
//! executor treats it as `run_once`; with a loop, once per item), and is `changed` when the
//! inventory changed. `name: host:port` sets `ansible_ssh_port`.

use async_trait::async_trait;
use documented::Documented;
use serde_json::{json, Value as Json};

use crate::error::{SResult, SourceError};
use crate::modules::{ArgSpec, Module, Plan, StepCtx, StepError};
use crate::playbook::Task;

/// `add_host`: a host (and its groups and variables) added to the run's inventory, for the plays
/// after this one.
///
/// Returns: `add_host` (`host_name`, `groups`, `host_vars`).
///
/// Check mode: adds as in a real run.
#[derive(Documented)]
pub struct AddHost;

/// `host:port`, `[v6]:port` or a bare name, as ansible-core's `parse_address` splits them.
fn split_port(name: &str) -> (String, Option<u16>) {
    if let Some(rest) = name.strip_prefix('[') {
        if let Some((h, p)) = rest.split_once("]:") {
            if let Ok(p) = p.parse() {
                return (h.to_string(), Some(p));
            }
        }
        return (rest.trim_end_matches(']').to_string(), None);
    }
    match name.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => match p.parse() {
            Ok(p) => (h.to_string(), Some(p)),
            Err(_) => (name.to_string(), None),
        },
        _ => (name.to_string(), None),
    }
}

#[async_trait]
impl Module for AddHost {
    fn name(&self) -> &'static str {
        "add_host"
    }
    fn doc(&self) -> &'static str {
        Self::DOCS
    }
    fn spec(&self) -> &'static [ArgSpec] {
        &[]
    }
    fn free_keys(&self) -> bool {
        true
    }
    fn validate(&self, task: &Task) -> SResult<()> {
        let Json::Object(a) = &task.args else { return Ok(()) };
        if !["name", "hostname", "host"].iter().any(|k| a.contains_key(*k)) {
            return Err(SourceError::new(task.module_span.clone(), "add_host: name, host or hostname needs to be provided"));
        }
        Ok(())
    }
    async fn plan(&self, ctx: &StepCtx<'_>, args: &Json) -> Result<Plan, StepError> {
        let Json::Object(a) = args else { return Err(StepError::failed("add_host: needs a mapping of arguments")) };
        let a: serde_json::Map<String, Json> = a.iter().filter(|(_, v)| v.as_str() != Some(crate::template::OMIT)).map(|(k, v)| (k.clone(), v.clone())).collect();
        let raw = ["name", "hostname", "host"].iter().find_map(|k| a.get(*k)).ok_or_else(|| StepError::failed("name, host or hostname needs to be provided"))?;
        let raw = match raw {
            Json::String(s) => s.clone(),
            other => other.to_string(),
        };
        let (name, port) = split_port(&raw);
        let groups: Vec<String> = match ["groupname", "groups", "group"].iter().find_map(|k| a.get(*k)) {
            None | Some(Json::Null) => Vec::new(),
            Some(Json::String(s)) if s.is_empty() => Vec::new(),
            Some(Json::String(s)) => s.split(',').map(|g| g.trim().to_string()).collect(),
            Some(Json::Array(l)) => l.iter().map(|g| g.as_str().map(str::to_string).unwrap_or_else(|| g.to_string())).collect(),
            Some(other) => return Err(StepError::failed(format!("Groups must be specified as a list, got {other}"))),
        };
        let mut unique: Vec<String> = Vec::new();
        for g in groups {
            if !unique.contains(&g) {
                unique.push(g);
            }
        }
        let mut vars = crate::template::Vars::new();
        for (k, v) in &a {
            if !["name", "hostname", "groupname", "groups"].contains(&k.as_str()) {
                vars.insert(k.clone(), v.clone());
            }
        }
        if let Some(p) = port {
            vars.insert("ansible_ssh_port".into(), json!(p));
        }
        let shown: serde_json::Map<String, Json> = vars.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let changed = ctx.run.change_inventory(&mut |inv| inv.add_dynamic_host(&name, &unique, vars.clone()));
        let mut plan = Plan::done(json!({ "add_host": { "host_name": name, "groups": unique, "host_vars": shown } }));
        if changed {
            plan.changes.push(format!("add host {name} to the run's inventory"));
        }
        Ok(plan)
    }
}
