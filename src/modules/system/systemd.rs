//! `systemd_show`: a unit's properties as `systemctl show` reports them
//! (read-only; runs in dry-run). Registers `props` (name -> value) and `exists`.

use async_trait::async_trait;
use documented::Documented;
use serde::Deserialize;
use serde_json::{json, Value as Json};

use crate::facts;
use crate::modules::{de, opt, req, typed, ArgSpec, Kind, Module, Plan, StepCtx, StepError};

/// `systemd_show`: a unit's properties as `systemctl show` reports them.
///
/// Returns: `unit`, `exists`, `props` (name to value).
///
/// Check mode: runs as in a real run (read-only).
#[derive(Documented)]
pub struct SystemdShow;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    unit: String,
    #[serde(default, deserialize_with = "de::list_loose")]
    properties: Vec<String>,
}

#[async_trait]
impl Module for SystemdShow {
    fn name(&self) -> &'static str {
        "systemd_show"
    }
    fn doc(&self) -> &'static str {
        Self::DOCS
    }
    fn spec(&self) -> &'static [ArgSpec] {
        const S: &[ArgSpec] = &[
            req("unit", Kind::Str).doc("The unit to read."),
            opt("properties", Kind::List).doc("The properties to return (all of them otherwise)."),
        ];
        S
    }
    async fn plan(&self, ctx: &StepCtx<'_>, args: &Json) -> Result<Plan, StepError> {
        let a: Args = typed("systemd_show", args)?;
        let mut props = a.properties.clone();
        props.push("LoadState".into());
        let out = ctx.run_ok(facts::systemctl_show_cmd(&a.unit, &props)).await?;
        let map = facts::parse_systemctl_show(&out.stdout_str());
        let exists = map.get("LoadState").and_then(Json::as_str).is_some_and(|s| s != "not-found");
        Ok(Plan::done(json!({ "unit": a.unit, "exists": exists, "props": map })))
    }
}

/// `systemd` / `systemd_service`: a unit started, stopped, restarted or reloaded, enabled or
/// disabled, masked or unmasked, after an optional `daemon_reload`, by `systemctl` itself, with
/// ansible-core's rules for when each is a change. Stopping, restarting and masking are destructive
/// (the service's tier comes from the baseline).
///
/// Returns: `name`, `state`, `enabled`, `status` (the unit's `systemctl show` properties).
///
/// Check mode: reads the unit and reports what would change; changes nothing.
#[derive(Documented)]
pub struct SystemdService(pub &'static str);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceArgs {
    #[serde(alias = "service", alias = "unit")]
    name: Option<String>,
    state: Option<String>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    enabled: Option<bool>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    masked: Option<bool>,
    #[serde(default, alias = "daemon-reload", deserialize_with = "de::bool_loose")]
    daemon_reload: Option<bool>,
    #[serde(default, alias = "daemon-reexec", deserialize_with = "de::bool_loose")]
    daemon_reexec: Option<bool>,
    scope: Option<String>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    no_block: Option<bool>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    force: Option<bool>,
}

const SERVICE_SPEC: &[ArgSpec] = &[
    opt("name", Kind::Str).aliases(&["service", "unit"]).doc("The unit."),
    opt("state", Kind::Str).doc("`started`, `stopped`, `restarted` or `reloaded`."),
    opt("enabled", Kind::Bool).doc("Start it at boot."),
    opt("masked", Kind::Bool).doc("Mask the unit (it can no longer start)."),
    opt("daemon_reload", Kind::Bool).aliases(&["daemon-reload"]).default("false").doc("Run `systemctl daemon-reload` first."),
    opt("daemon_reexec", Kind::Bool).aliases(&["daemon-reexec"]).default("false").doc("Run `systemctl daemon-reexec` first."),
    opt("scope", Kind::Str).default("system").doc("`system`, `user` or `global`."),
    opt("no_block", Kind::Bool).default("false").doc("Do not wait for the operation to finish."),
    opt("force", Kind::Bool).default("false").doc("Override existing links when enabling."),
];

#[async_trait]
impl Module for SystemdService {
    fn name(&self) -> &'static str {
        self.0
    }
    fn doc(&self) -> &'static str {
        Self::DOCS
    }
    fn spec(&self) -> &'static [ArgSpec] {
        SERVICE_SPEC
    }
    // No argument is required: ansible-core's required_one_of counts daemon_reload's default
    // (false), so `systemd: name=x` alone registers the unit's `status` and changes nothing.
    async fn plan(&self, ctx: &StepCtx<'_>, args: &Json) -> Result<Plan, StepError> {
        use crate::transport::Cmd;
        let a: ServiceArgs = typed(self.0, args)?;
        let mut sys = vec!["systemctl".to_string()];
        match a.scope.as_deref() {
            None | Some("system") => {}
            Some("user") => sys.push("--user".into()),
            Some("global") => sys.push("--global".into()),
            Some(other) => return Err(StepError::failed(format!("{}: scope must be one of: system, user, global, got: {other}", self.0))),
        }
        if a.no_block.unwrap_or(false) {
            sys.push("--no-block".into());
        }
        if a.force.unwrap_or(false) {
            sys.push("--force".into());
        }
        let ctl = |words: &[&str]| Cmd::argv(sys.iter().cloned().chain(words.iter().map(|w| w.to_string())));
        let mut plan = Plan::ok();
        // daemon-reload and daemon-reexec run first, and are not changes (as in ansible-core).
        let mut pre = Vec::new();
        if a.daemon_reload.unwrap_or(false) {
            pre.push(ctl(&["daemon-reload"]));
        }
        if a.daemon_reexec.unwrap_or(false) {
            pre.push(ctl(&["daemon-reexec"]));
        }
        let Some(unit) = a.name.clone() else {
            if a.state.is_some() || a.enabled.is_some() || a.masked.is_some() {
                return Err(StepError::failed(format!("{}: name is required with state, enabled or masked", self.0)));
            }
            plan.commands = pre;
            plan.run_anyway = !plan.commands.is_empty();
            return Ok(plan);
        };
        if unit.contains(['*', '?', '[']) {
            return Err(StepError::failed(format!("This module does not currently support using glob patterns, found '{}' in service name: {unit}", unit.chars().find(|c| "*?[".contains(*c)).unwrap_or('*'))));
        }
        let out = ctx.run(ctl(&["show", &unit])).await?;
        let status = facts::parse_systemctl_show(&out.stdout_str());
        let get = |k: &str| status.get(k).and_then(Json::as_str).unwrap_or("").to_string();
        let found = !status.is_empty() && get("LoadState") != "not-found";
        let missing = || StepError::failed(format!("Could not find the requested service {unit}: host"));
        plan.result.insert("name".into(), json!(unit));
        let mut cmds = Vec::new();
        if let Some(want) = a.masked {
            let is = get("LoadState") == "masked";
            if is != want {
                if !found && !is {
                    return Err(missing());
                }
                let verb = if want { "mask" } else { "unmask" };
                plan.changes.push(format!("{verb} unit {unit}"));
                cmds.push(ctl(&[verb, &unit]));
                if want {
                    plan.destructive = Some(crate::safety::Destructive { reason: format!("masks {unit} (it can no longer be started)"), services: vec![unit.clone()], ..Default::default() });
                }
            }
        }
        if let Some(want) = a.enabled {
            if !found {
                return Err(missing());
            }
            let out = ctx.run(ctl(&["is-enabled", &unit, "-l"])).await?;
            let is = out.rc == 0 && !matches!(out.stdout_str().trim(), "enabled-runtime" | "indirect" | "alias");
            plan.result.insert("enabled".into(), json!(want));
            if is != want {
                let verb = if want { "enable" } else { "disable" };
                plan.changes.push(format!("{verb} unit {unit}"));
                cmds.push(ctl(&[verb, &unit]));
            }
        }
        if let Some(state) = &a.state {
            if !found {
                return Err(missing());
            }
            let active = get("ActiveState");
            let running = matches!(active.as_str(), "active" | "activating");
            let action = match state.as_str() {
                "started" => (!running).then_some("start"),
                "stopped" => (running || active == "deactivating").then_some("stop"),
                "restarted" => Some(if running { "restart" } else { "start" }),
                "reloaded" => Some(if running { "reload" } else { "start" }),
                other => return Err(StepError::failed(format!("{}: value of state must be one of: reloaded, restarted, started, stopped, got: {other}", self.0))),
            };
            plan.result.insert("state".into(), json!(if matches!(state.as_str(), "restarted" | "reloaded") { "started" } else { state.as_str() }));
            if let Some(action) = action {
                plan.changes.push(format!("{action} unit {unit}"));
                cmds.push(ctl(&[action, &unit]));
                if matches!(action, "stop" | "restart") {
                    plan.destructive = Some(crate::safety::Destructive { reason: format!("{action}s {unit}"), services: vec![unit.clone()], ..Default::default() });
                }
            }
        }
        plan.result.insert("status".into(), Json::Object(status.clone()));
        plan.run_anyway = !pre.is_empty();
        pre.extend(cmds);
        plan.commands = pre;
        Ok(plan)
    }
}
