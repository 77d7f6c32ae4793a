//! Docker containers on the host, through its `docker` command:
//!
//! - `container_facts`: `ansible_facts.containers`, every container (or the named ones) with
//!   state, health, exit code, restart count, restart policy, mounts and volumes, from one
//!   `docker inspect`. Read-only.
//! - `restart_policy`: sets a container's restart policy (`policy: "no"` stops a restart loop
//!   before a repair) and records the original on the host, so `state: restored` puts it back,
//!   in this run or in the run that finishes a cut one. Takes `service` (a `docker` or
//!   `compose` entry of the host's `services` map) or `container`.
//! - `container_remove`: removes a stopped container, never its volumes, after saving its
//!   `docker inspect` and its writable layer (`docker export`) beside each other with a sha256
//!   manifest that is checked before the removal. Destructive, STANDARD_HITL at least.

use async_trait::async_trait;
use documented::Documented;
use serde::Deserialize;
use serde_json::{json, Value as Json};

use crate::docker::{self, Container};
use crate::modules::system::service::{services_of, Manager};
use crate::modules::{de, opt, req, typed, ArgSpec, Kind, Module, Plan, StepCtx, StepError};
use crate::transport::Cmd;
use crate::transport::quote::quote;

async fn inspect(ctx: &StepCtx<'_>, cmd: Cmd) -> Result<Vec<Container>, StepError> {
    let out = ctx.run(cmd).await?;
    docker::containers_from(&out).map_err(|e| StepError::failed(format!("host {}: {e}", ctx.host)))
}

/// `container_facts`: every container (or the named ones) with state, health, exit code, restart
/// count, restart policy, mounts and volumes, from one `docker inspect`.
///
/// Returns: `ansible_facts.containers` (name to its facts).
///
/// Check mode: runs as in a real run (read-only).
#[derive(Documented)]
pub struct ContainerFacts;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FactsArgs {
    #[serde(default, deserialize_with = "de::list_loose")]
    names: Vec<String>,
}

#[async_trait]
impl Module for ContainerFacts {
    fn name(&self) -> &'static str {
        "container_facts"
    }
    fn doc(&self) -> &'static str {
        Self::DOCS
    }
    fn spec(&self) -> &'static [ArgSpec] {
        const S: &[ArgSpec] = &[
            opt("names", Kind::List).doc("Only these containers (all of them otherwise)."),
        ];
        S
    }
    async fn plan(&self, ctx: &StepCtx<'_>, args: &Json) -> Result<Plan, StepError> {
        let a: FactsArgs = typed("container_facts", args)?;
        let cs = inspect(ctx, docker::inspect_cmd(&a.names)).await?;
        let map: serde_json::Map<String, Json> = cs.iter().map(|c| (c.name.clone(), c.as_fact())).collect();
        Ok(Plan::done(json!({ "ansible_facts": { "containers": map } })))
    }
}

/// `restart_policy`: a container's restart policy set (`policy: "no"` stops a restart loop before a
/// repair), the original recorded on the host so `state: restored` puts it back, in this run or the
/// one that finishes a cut one.
///
/// Returns: `container`, `before`, `after`, `recorded`.
///
/// Check mode: reads the policy and reports the change; changes nothing.
#[derive(Documented)]
pub struct RestartPolicy;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyArgs {
    service: Option<String>,
    container: Option<String>,
    policy: Option<String>,
    state: Option<String>,
    record_dir: Option<String>,
}

fn valid_policy(p: &str) -> bool {
    matches!(p, "no" | "always" | "unless-stopped" | "on-failure") || p.strip_prefix("on-failure:").is_some_and(|n| n.parse::<u32>().is_ok())
}

#[async_trait]
impl Module for RestartPolicy {
    fn name(&self) -> &'static str {
        "restart_policy"
    }
    fn doc(&self) -> &'static str {
        Self::DOCS
    }
    fn spec(&self) -> &'static [ArgSpec] {
        const S: &[ArgSpec] = &[
            opt("service", Kind::Str).doc("A `docker` or `compose` entry of the host's `services` map."),
            opt("container", Kind::Str).doc("A container by name (instead of `service`)."),
            opt("policy", Kind::Str).doc("The restart policy to set (`no`, `on-failure`, `unless-stopped`, `always`)."),
            opt("state", Kind::Str).default("present").doc("`present` sets `policy`; `restored` puts back the policy recorded before."),
            opt("record_dir", Kind::Str).default("/var/lib/recover/restart-policy").doc("Where on the host the original policy is recorded."),
        ];
        S
    }
    fn validate(&self, task: &crate::playbook::Task) -> crate::error::SResult<()> {
        let has = |k: &str| task.args.get(k).is_some_and(|v| !v.is_null());
        let err = |k: &str, m: String| Err(crate::error::SourceError::new(task.arg_span(k), m));
        if has("service") == has("container") {
            return err("service", "restart_policy: give exactly one of service (a docker or compose entry of the host's services map) and container".into());
        }
        if has("policy") == has("state") {
            return err("policy", "restart_policy: give policy (no, always, unless-stopped, on-failure[:N]) to set it, or state: restored to put the recorded one back".into());
        }
        if let Some(p) = task.args.get("policy").and_then(Json::as_str).filter(|p| !crate::template::is_template(p)) {
            if !valid_policy(p) {
                return err("policy", format!("restart_policy: policy {p:?} is not one of no, always, unless-stopped, on-failure[:N] (quote no: YAML reads a bare no as false)"));
            }
        }
        if let Some(s) = task.args.get("state").and_then(Json::as_str).filter(|s| !crate::template::is_template(s)) {
            if s != "restored" {
                return err("state", format!("restart_policy: state {s:?}: the only state is restored"));
            }
        }
        Ok(())
    }
    async fn plan(&self, ctx: &StepCtx<'_>, args: &Json) -> Result<Plan, StepError> {
        // YAML's bare `no` arrives as false.
        let mut args = args.clone();
        if args.get("policy") == Some(&Json::Bool(false)) {
            args["policy"] = json!("no");
        }
        let a: PolicyArgs = typed("restart_policy", &args)?;
        let cmd = match (&a.service, &a.container) {
            (Some(s), _) => match Manager::lookup(services_of(ctx).as_ref(), s).map_err(StepError::failed)? {
                m @ (Manager::Docker { .. } | Manager::Compose { .. }) => m.status_cmd(),
                other => return Err(StepError::failed(format!("restart_policy: service {s} is managed by {}, not docker or compose: it has no restart policy", other.describe()))),
            },
            (None, Some(c)) => docker::inspect_cmd(std::slice::from_ref(c)),
            (None, None) => return Err(StepError::failed("restart_policy: give service or container")),
        };
        let what = a.service.clone().or(a.container.clone()).unwrap_or_default();
        let cs = inspect(ctx, cmd).await?;
        if cs.is_empty() && a.container.is_some() {
            return Err(StepError::failed(format!("host {}: restart_policy: no container {what}", ctx.host)));
        }
        let dir = a.record_dir.clone().unwrap_or_else(|| format!("{}/restart-policies", ctx.backup_root));
        let mut plan = Plan::ok();
        let mut policies = serde_json::Map::new();
        for c in &cs {
            let record = format!("{}/{}.policy", dir.trim_end_matches('/'), c.name);
            let recorded = ctx.run(Cmd::argv(["cat", record.as_str()])).await?;
            let recorded = recorded.ok().then(|| recorded.stdout_str().trim().to_string()).filter(|r| valid_policy(r));
            match (&a.policy, a.state.as_deref()) {
                (Some(p), _) => {
                    if !valid_policy(p) {
                        return Err(StepError::failed(format!("restart_policy: policy {p:?} is not one of no, always, unless-stopped, on-failure[:N]")));
                    }
                    policies.insert(c.name.clone(), json!({"before": c.restart_policy, "after": p, "recorded": record}));
                    if &c.restart_policy == p {
                        continue;
                    }
                    // A record a cut run left is the original: it is kept, never overwritten.
                    let keep = recorded.clone().unwrap_or_else(|| c.restart_policy.clone());
                    plan.changes.push(format!("restart policy of container {}: {} -> {p} (the original, {keep}, is recorded in {record}; `state: restored` puts it back)", c.name, c.restart_policy));
                    plan.commands.push(Cmd::shell(format!(
                        "mkdir -p {d} && {{ test -s {r} || printf '%s\\n' {k} > {r}; }} && docker update --restart={p} {c} >/dev/null",
                        d = quote(&dir),
                        r = quote(&record),
                        k = quote(&keep),
                        p = quote(p),
                        c = quote(&c.name)
                    )));
                }
                (None, _) => {
                    let Some(orig) = recorded else { continue };
                    policies.insert(c.name.clone(), json!({"before": c.restart_policy, "after": orig, "recorded": record}));
                    if c.restart_policy == orig {
                        plan.changes.push(format!("restart policy of container {} is {orig} again: remove its record {record}", c.name));
                        plan.commands.push(Cmd::argv(["rm", "-f", record.as_str()]));
                    } else {
                        plan.changes.push(format!("restart policy of container {}: {} -> {orig} (as recorded in {record} before the repair)", c.name, c.restart_policy));
                        plan.commands.push(Cmd::shell(format!("docker update --restart={} {} >/dev/null && rm -f {}", quote(&orig), quote(&c.name), quote(&record))));
                    }
                }
            }
        }
        plan.result.insert("policies".into(), Json::Object(policies));
        Ok(plan)
    }
}

/// `container_remove`: a stopped container removed, never its volumes, after its `docker inspect`
/// and its writable layer (`docker export`) are saved with a sha256 manifest checked before the
/// removal. STANDARD_HITL at least.
///
/// Returns: `container`, `backup` (the saved folder), `inspect`, `export`, `manifest`.
///
/// Check mode: plans the save and the removal; removes nothing.
#[derive(Documented)]
pub struct ContainerRemove;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RemoveArgs {
    name: String,
    backup_dir: Option<String>,
}

#[async_trait]
impl Module for ContainerRemove {
    fn name(&self) -> &'static str {
        "container_remove"
    }
    fn doc(&self) -> &'static str {
        Self::DOCS
    }
    fn spec(&self) -> &'static [ArgSpec] {
        const S: &[ArgSpec] = &[
            req("name", Kind::Str).doc("The stopped container to remove (never its volumes)."),
            opt("backup_dir", Kind::Str).default("/var/backups/recover/containers").doc("Where its `docker inspect` and exported layer are kept before the removal."),
        ];
        S
    }
    async fn plan(&self, ctx: &StepCtx<'_>, args: &Json) -> Result<Plan, StepError> {
        let a: RemoveArgs = typed("container_remove", args)?;
        let cs = inspect(ctx, docker::inspect_cmd(std::slice::from_ref(&a.name))).await?;
        let mut plan = Plan::ok();
        let Some(c) = cs.into_iter().next() else { return Ok(plan) };
        if c.running || c.restarting {
            return Err(StepError::failed(format!("host {}: container {} is {}: container_remove removes stopped containers only", ctx.host, c.name, c.describe())));
        }
        let dir = a.backup_dir.clone().unwrap_or_else(|| format!("{}/containers", ctx.backup_root));
        let base = format!("{}/{}-{}", dir.trim_end_matches('/'), c.name, &c.id.chars().take(12).collect::<String>());
        let volumes: Vec<String> = c.mounts.iter().map(|m| m.name.clone().unwrap_or_else(|| m.source.clone())).collect();
        plan.changes.push(format!(
            "remove container {} ({}, image {}, finished {}){}",
            c.name,
            c.describe(),
            c.image,
            c.finished_at,
            if volumes.is_empty() { String::new() } else { format!("; its volumes and mounts are kept: {}", volumes.join(", ")) }
        ));
        // Saved, checked, and only then removed (never `-v`: volumes stay).
        let script = format!(
            "set -e; umask 077; mkdir -p {d}; docker inspect --type container {c} > {b}.inspect.json; docker export {c} > {b}.tar; \
             tar -tf {b}.tar > /dev/null; (cd {d} && sha256sum {ib} {tb} > {mb} && sha256sum -c --quiet {mb}); docker rm {c} > /dev/null",
            d = quote(&dir),
            c = quote(&c.id),
            b = quote(&base),
            ib = quote(&format!("{}.inspect.json", base.rsplit('/').next().unwrap_or_default())),
            tb = quote(&format!("{}.tar", base.rsplit('/').next().unwrap_or_default())),
            mb = quote(&format!("{}.sha256", base.rsplit('/').next().unwrap_or_default())),
        );
        plan.commands.push(Cmd::shell(script).label(format!("docker inspect {0} > {1}.inspect.json; docker export {0} > {1}.tar; sha256sum -c; docker rm {0}", c.name, base)));
        plan.destructive = Some(crate::safety::Destructive {
            reason: format!("removes container {} ({})", c.name, c.describe()),
            tier: Some(crate::safety::Tier::StandardHitl),
            preserves: Some(format!("its docker inspect and writable layer (docker export) are saved to {base}.inspect.json and {base}.tar and sha256-checked before the removal; volumes are never removed")),
            ..Default::default()
        });
        plan.result.insert("container".into(), c.as_fact());
        plan.result.insert("backup".into(), json!({"inspect": format!("{base}.inspect.json"), "export": format!("{base}.tar"), "manifest": format!("{base}.sha256")}));
        Ok(plan)
    }
}
