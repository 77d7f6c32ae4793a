//! `service`: start, stop, restart or reload a service, through the host's
//! `services` map (see the README): systemd units by default, or
//! `manager: command` with `start`/`stop`/`reload`/`restart`/`status`
//! commands, run as the entry's `user` when it names one (hosts without
//! systemd), or `manager: docker` (a container) and `manager: compose` (one
//! service of a Compose project). After a change it checks the service really
//! is in the state asked for: a container must still run, not restarted, a
//! moment after its start.

use std::time::Duration;

use async_trait::async_trait;
use documented::Documented;
use serde::Deserialize;
use serde_json::{json, Value as Json};

use crate::modules::{de, opt, typed, ArgSpec, Kind, Module, Outcome, Plan, StepCtx, StepError};
use crate::transport::Cmd;

/// `service`: a service started, stopped, restarted or reloaded, and enabled or disabled, through
/// the host's `services` map (systemd units by default; commands, Docker containers or Compose
/// services where the map says so), then checked to really be in that state.
///
/// Returns: `name`, `state`, `enabled`, `status` (what the manager reports), and `warnings`.
///
/// Check mode: reads the service's state and reports what would change; starts or stops nothing.
#[derive(Documented)]
pub struct Service;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    name: String,
    state: Option<String>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    enabled: Option<bool>,
    /// Seconds between stop and start of a restart made of the two (a `command` manager).
    sleep: Option<Json>,
    /// A process-table pattern (`pgrep -f`): the status check of a `command` manager.
    pattern: Option<String>,
    /// Appended to a `command` manager's commands.
    #[serde(alias = "args")]
    arguments: Option<String>,
    /// The service manager: `auto` or `systemd` (the `services` map decides); others refused.
    #[serde(rename = "use")]
    use_: Option<String>,
    runlevel: Option<String>,
}

/// How one service is managed on one host.
#[derive(Clone, Debug)]
pub enum Manager {
    Systemd { unit: String },
    /// A SysV init script, on a host without systemd (ansible-core's `service` does the same):
    /// `service NAME ACTION`, enabled by its `/etc/rc?.d` links (`update-rc.d`).
    Sysv { name: String },
    Commands { start: Option<String>, stop: Option<String>, restart: Option<String>, reload: Option<String>, status: String, user: Option<String> },
    /// A Docker container (`docker start/stop/restart`, `docker kill -s HUP` to reload).
    Docker { container: String },
    /// One service of a Compose project (`up -d --no-deps`, `stop`, `restart`, `kill -s HUP`).
    Compose { project: crate::docker::Compose, service: String },
}

impl Manager {
    /// The host's `services.NAME` entry; a service without one is a systemd unit of that name.
    pub fn lookup(services: Option<&Json>, name: &str) -> Result<Manager, String> {
        let Some(entry) = services.and_then(|s| s.get(name)) else { return Ok(Manager::Systemd { unit: name.to_string() }) };
        let s = |k: &str| entry.get(k).and_then(|v| match v {
            Json::String(s) => Some(s.clone()),
            Json::Number(n) => Some(n.to_string()),
            _ => None,
        });
        match s("manager").as_deref().unwrap_or("systemd") {
            "systemd" => Ok(Manager::Systemd { unit: s("unit").unwrap_or_else(|| name.to_string()) }),
            "command" => Ok(Manager::Commands {
                start: s("start"),
                stop: s("stop"),
                restart: s("restart"),
                reload: s("reload"),
                status: s("status").ok_or_else(|| format!("services.{name}: a `command` manager needs a `status` command"))?,
                user: s("user"),
            }),
            "docker" => Ok(Manager::Docker { container: s("container").unwrap_or_else(|| name.to_string()) }),
            "compose" => {
                let files = match entry.get("file").or_else(|| entry.get("files")) {
                    None | Some(Json::Null) => Vec::new(),
                    Some(Json::String(f)) => vec![f.clone()],
                    Some(Json::Array(a)) => a.iter().filter_map(|f| f.as_str().map(str::to_string)).collect(),
                    Some(other) => return Err(format!("services.{name}: `file` is a path or a list of paths, not {other}")),
                };
                let project_dir = s("project_dir").ok_or_else(|| format!("services.{name}: a `compose` manager needs `project_dir` (the folder of the project's compose file)"))?;
                Ok(Manager::Compose {
                    project: crate::docker::Compose { project_dir, files, project: s("project"), command: s("command") },
                    service: s("service").unwrap_or_else(|| name.to_string()),
                })
            }
            other => Err(format!("services.{name}: unknown manager '{other}' (systemd, command, docker or compose)")),
        }
    }

    pub fn is_container(&self) -> bool {
        matches!(self, Manager::Docker { .. } | Manager::Compose { .. })
    }

    /// How an operator reads it: "unit nginx", "container momo-db", "compose service kafka (/srv/sentry)".
    pub fn describe(&self) -> String {
        match self {
            Manager::Systemd { unit } => format!("unit {unit}"),
            Manager::Sysv { name } => format!("init script {name}"),
            Manager::Commands { .. } => "its commands".into(),
            Manager::Docker { container } => format!("container {container}"),
            Manager::Compose { project, service } => format!("compose service {service} ({})", project.project_dir),
        }
    }

    pub fn status_cmd(&self) -> Cmd {
        match self {
            Manager::Systemd { unit } => Cmd::argv(["systemctl", "is-active", "--quiet", unit.as_str()]),
            Manager::Sysv { name } => Cmd::shell(sysv(name, "status") + " >/dev/null 2>&1"),
            Manager::Commands { status, user, .. } => Cmd::shell(status.clone()).become_user(user.clone()),
            Manager::Docker { container } => crate::docker::inspect_cmd(std::slice::from_ref(container)),
            Manager::Compose { project, service } => project.inspect_service_cmd(service),
        }
    }

    /// The commands for an action (`start`, `stop`, `restart`, `reload`).
    pub fn action_cmds(&self, action: &str) -> Result<Vec<Cmd>, String> {
        match self {
            Manager::Systemd { unit } => Ok(vec![Cmd::argv(["systemctl", action, unit.as_str()])]),
            Manager::Sysv { name } => Ok(vec![Cmd::shell(sysv(name, action)).label(format!("service {name} {action}"))]),
            Manager::Docker { container } => match action {
                "start" | "stop" | "restart" => Ok(vec![Cmd::argv(["docker", action, container.as_str()])]),
                "reload" => Ok(vec![Cmd::argv(["docker", "kill", "-s", "HUP", container.as_str()])]),
                other => Err(format!("unknown action '{other}'")),
            },
            Manager::Compose { project, service } => {
                let svc = crate::transport::quote::quote(service);
                let args = match action {
                    "start" => format!("up -d --no-deps {svc}"),
                    "stop" | "restart" => format!("{action} {svc}"),
                    "reload" => format!("kill -s HUP {svc}"),
                    other => return Err(format!("unknown action '{other}'")),
                };
                let shown = format!("compose {args} (in {})", project.project_dir);
                Ok(vec![Cmd::shell(project.script(&args)).label(shown)])
            }
            Manager::Commands { start, stop, restart, reload, user, .. } => {
                let need = |c: &Option<String>, what: &str| c.clone().map(|c| Cmd::shell(c).become_user(user.clone())).ok_or_else(|| format!("the service has no `{what}` command"));
                match action {
                    "start" => Ok(vec![need(start, "start")?]),
                    "stop" => Ok(vec![need(stop, "stop")?]),
                    "reload" => Ok(vec![need(reload, "reload")?]),
                    "restart" => match restart {
                        Some(r) => Ok(vec![Cmd::shell(r.clone()).become_user(user.clone())]),
                        None => Ok(vec![need(stop, "stop")?, need(start, "start")?]),
                    },
                    other => Err(format!("unknown action '{other}'")),
                }
            }
        }
    }
}

/// The service's state and, for a container manager, its containers.
/// `service NAME ACTION` where the `service` command is, else the init script itself.
fn sysv(name: &str, action: &str) -> String {
    let n = crate::transport::quote::quote(name);
    format!("if command -v service >/dev/null 2>&1; then service {n} {action}; else /etc/init.d/{n} {action}; fi")
}

/// Where a service with no `services` entry lives on this host, as ansible-core's `service`
/// finds it: a systemd unit (it must exist), else, without systemd, a SysV init script.
/// `Err`: ansible-core's "Could not find the requested service".
async fn find_default(ctx: &StepCtx<'_>, name: &str) -> Result<Manager, StepError> {
    let n = crate::transport::quote::quote(name);
    let out = ctx
        .run(Cmd::shell(format!("if [ -d /run/systemd/system ]; then echo SYSTEMD; systemctl show -p LoadState --value {n}.service 2>/dev/null || systemctl show -p LoadState --value {n}; else echo NOSYSTEMD; [ -x /etc/init.d/{n} ] && echo SYSV; fi; true")).label(format!("find service {name}")))
        .await?;
    let text = out.stdout_str();
    let mut lines = text.lines().map(str::trim);
    match lines.next() {
        Some("SYSTEMD") if lines.next() == Some("not-found") => Err(StepError::failed(format!("Could not find the requested service {name}: host"))),
        Some("NOSYSTEMD") if lines.next() == Some("SYSV") => Ok(Manager::Sysv { name: name.to_string() }),
        Some("NOSYSTEMD") => Err(StepError::failed(format!("Could not find the requested service {name}: host"))),
        _ => Ok(Manager::Systemd { unit: name.to_string() }),
    }
}

pub async fn state(ctx: &StepCtx<'_>, m: &Manager) -> Result<(crate::docker::State, Vec<crate::docker::Container>), StepError> {
    use crate::docker::State;
    if !m.is_container() {
        return Ok((if ctx.run(m.status_cmd()).await?.ok() { State::Running } else { State::Stopped }, Vec::new()));
    }
    let out = ctx.run(m.status_cmd()).await?;
    let cs = crate::docker::containers_from(&out).map_err(|e| StepError::failed(format!("host {}: {}: {e}", ctx.host, m.describe())))?;
    Ok((crate::docker::state_of(&cs), cs))
}

/// `pattern`'s status check: a process whose command line matches, other than this check
/// itself and the processes it runs under (`sudo`, `sh -c`, whose command lines hold it too).
fn pattern_status(pattern: &str) -> String {
    format!(
        "a=\" $$ \"; p=$$; while [ \"$p\" -gt 1 ] 2>/dev/null; do p=$(sed 's/.*) //' /proc/$p/stat | cut -d' ' -f2); a=\"$a$p \"; done; \
         for x in $(pgrep -f -- {}); do case \"$a\" in *\" $x \"*) ;; *) exit 0;; esac; done; exit 1",
        crate::transport::quote::quote(pattern)
    )
}

pub fn services_of(ctx: &StepCtx<'_>) -> Option<Json> {
    ctx.vars.get_attr("services").ok().filter(|v| !v.is_undefined()).and_then(|v| crate::template::json_of(&v).ok())
}

/// Arguments only ansible-core's systemd module takes.
const SYSTEMD_ONLY: &[&str] = &["daemon_reload", "daemon-reload", "daemon_reexec", "daemon-reexec", "masked", "scope", "no_block", "force"];

/// `service` with systemd's own arguments (`daemon_reload: true`, `masked`): ansible-core's
/// service action hands such a step to the systemd module on a systemd host, without the
/// arguments systemd does not take (each a warning). `None`: an ordinary service step.
async fn via_systemd(ctx: &StepCtx<'_>, args: &Json) -> Result<Option<Plan>, StepError> {
    let Some(map) = args.as_object() else { return Ok(None) };
    let given = |k: &str| map.get(k).is_some_and(|v| !v.is_null());
    if !SYSTEMD_ONLY.iter().any(|k| given(k)) {
        return Ok(None);
    }
    if let Some(name) = map.get("name").and_then(Json::as_str) {
        let m = Manager::lookup(services_of(ctx).as_ref(), name).map_err(StepError::failed)?;
        if !matches!(m, Manager::Systemd { .. }) {
            let k = SYSTEMD_ONLY.iter().find(|k| given(k)).copied().unwrap_or_default();
            return Err(StepError::failed(format!("service {name}: {k} is systemd's, and this service is {}", m.describe())));
        }
    }
    let out = ctx.run(Cmd::shell("[ -d /run/systemd/system ] && echo SYSTEMD; true").label("find the service manager")).await?;
    if out.stdout_str().trim() != "SYSTEMD" {
        let k = SYSTEMD_ONLY.iter().find(|k| given(k)).copied().unwrap_or_default();
        return Err(StepError::failed(format!("Unsupported parameters for (service) module: {k} (this host has no systemd)")));
    }
    let mut sargs = serde_json::Map::new();
    let mut warnings = Vec::new();
    for (k, v) in map {
        match k.as_str() {
            "pattern" | "runlevel" | "sleep" | "arguments" | "args" if !v.is_null() => warnings.push(format!("Ignoring \"{k}\" as it is not used in \"systemd\"")),
            "pattern" | "runlevel" | "sleep" | "arguments" | "args" | "use" => {}
            _ => {
                sargs.insert(k.clone(), v.clone());
            }
        }
    }
    let mut plan = crate::modules::system::systemd::SystemdService("systemd").plan(ctx, &Json::Object(sargs)).await?;
    if !warnings.is_empty() {
        plan.note = Some(format!("[WARNING]: {}", warnings.join("; ")));
        plan.result.insert("warnings".into(), json!(warnings));
    }
    Ok(Some(plan))
}

#[async_trait]
impl Module for Service {
    fn name(&self) -> &'static str {
        "service"
    }
    fn doc(&self) -> &'static str {
        Self::DOCS
    }
    fn spec(&self) -> &'static [ArgSpec] {
        const S: &[ArgSpec] = &[
            opt("name", Kind::Str).doc("The service (an entry of the host's `services` map, or a systemd unit); required but with the systemd-only arguments."),
            opt("state", Kind::Str).doc("`started`, `stopped`, `restarted` or `reloaded`."),
            opt("enabled", Kind::Bool).doc("Start it at boot."),
            opt("sleep", Kind::Any).doc("Seconds between the stop and the start of a restart."),
            opt("pattern", Kind::Str).doc("Accepted for Ansible; the status comes from the service manager."),
            opt("arguments", Kind::Str).aliases(&["args"]).doc("Arguments for the service's command."),
            opt("use", Kind::Str).default("auto").doc("The service manager (`auto` finds it)."),
            opt("runlevel", Kind::Str).doc("Accepted for Ansible (sysvinit runlevels)."),
            opt("daemon_reload", Kind::Bool).aliases(&["daemon-reload"]).doc("systemd hosts: the step is systemd's, as ansible-core's service action passes it (`systemctl daemon-reload` first)."),
            opt("daemon_reexec", Kind::Bool).aliases(&["daemon-reexec"]).doc("systemd hosts: passed to systemd (`systemctl daemon-reexec` first)."),
            opt("masked", Kind::Bool).doc("systemd hosts: passed to systemd (mask or unmask the unit)."),
            opt("scope", Kind::Str).doc("systemd hosts: passed to systemd (`system`, `user` or `global`)."),
            opt("no_block", Kind::Bool).doc("systemd hosts: passed to systemd."),
            opt("force", Kind::Bool).doc("systemd hosts: passed to systemd."),
        ];
        S
    }
    fn validate(&self, task: &crate::playbook::Task) -> crate::error::SResult<()> {
        if let Some(u) = task.args.get("use").and_then(Json::as_str).filter(|u| !crate::template::is_template(u)) {
            if !["auto", "systemd"].contains(&u) {
                return Err(crate::error::SourceError::new(task.arg_span("use"), format!("service: use: {u} is not supported by recover (auto or systemd; hosts without systemd use a `command` manager in the host's `services` map)")));
            }
        }
        Ok(())
    }
    async fn plan(&self, ctx: &StepCtx<'_>, args: &Json) -> Result<Plan, StepError> {
        if let Some(plan) = via_systemd(ctx, args).await? {
            return Ok(plan);
        }
        if args.get("name").is_none_or(Json::is_null) {
            return Err(StepError::failed("missing required arguments: name"));
        }
        let a: Args = typed("service", args)?;
        if let Some(u) = a.use_.as_deref().filter(|u| !["auto", "systemd"].contains(u)) {
            return Err(StepError::failed(format!("service: use: {u} is not supported by recover (auto or systemd)")));
        }
        let services = services_of(ctx);
        let mut m = Manager::lookup(services.as_ref(), &a.name).map_err(StepError::failed)?;
        let listed = services.as_ref().and_then(|s| s.get(&a.name)).is_some();
        if !listed {
            m = find_default(ctx, &a.name).await?;
        }
        let sleep = match &a.sleep {
            None | Some(Json::Null) => None,
            Some(Json::Number(n)) => n.as_u64(),
            Some(Json::String(s)) => Some(s.trim().parse::<u64>().map_err(|_| StepError::failed(format!("service: sleep must be a whole number of seconds, got {s:?}")))?),
            Some(other) => return Err(StepError::failed(format!("service: sleep must be a whole number of seconds, got {other}"))),
        };
        let mut warnings = Vec::new();
        match &mut m {
            Manager::Sysv { .. } => {}
            Manager::Systemd { .. } => {
                // As ansible-core's service action on a systemd host: these do not apply there.
                for (k, given) in [("pattern", a.pattern.is_some()), ("runlevel", a.runlevel.is_some()), ("sleep", sleep.is_some()), ("arguments", a.arguments.is_some())] {
                    if given {
                        warnings.push(format!("Ignoring \"{k}\" as it is not used in \"systemd\""));
                    }
                }
            }
            Manager::Commands { start, stop, restart, reload, status, .. } => {
                if let Some(extra) = a.arguments.as_deref().filter(|x| !x.trim().is_empty()) {
                    for c in [start, stop, restart, reload].into_iter().flatten() {
                        c.push(' ');
                        c.push_str(extra);
                    }
                }
                if let Some(p) = &a.pattern {
                    *status = pattern_status(p);
                }
            }
            Manager::Docker { .. } | Manager::Compose { .. } => {
                for (k, given) in [("pattern", a.pattern.is_some()), ("runlevel", a.runlevel.is_some()), ("arguments", a.arguments.is_some())] {
                    if given {
                        return Err(StepError::failed(format!("service {}: {k} does not apply to {}", a.name, m.describe())));
                    }
                }
            }
        }
        use crate::docker::State;
        let (st, containers) = state(ctx, &m).await?;
        let running = st != State::Stopped;
        let mut plan = Plan::ok();
        plan.result.insert("name".into(), json!(a.name));
        plan.result.insert("running_before".into(), json!(running));
        if m.is_container() {
            plan.result.insert("containers".into(), json!(containers.iter().map(|c| json!({"name": c.name, "status": c.describe(), "restart_policy": c.restart_policy})).collect::<Vec<_>>()));
        }
        if !warnings.is_empty() {
            plan.note = Some(format!("[WARNING]: {}", warnings.join("; ")));
            plan.result.insert("warnings".into(), json!(warnings));
        }
        // The status check as `pattern` made it, for apply's check (taken out there).
        if let (Manager::Commands { status, .. }, false) = (&m, ctx.check) {
            plan.result.insert("_status".into(), json!(status));
        }
        let action = match (a.state.as_deref(), st) {
            (None, _) => None,
            (Some("started"), State::Running) | (Some("stopped"), State::Stopped) => None,
            (Some("started"), State::Stopped) => Some("start"),
            // Up but not serving (a restart loop): started means a restart.
            (Some("started"), State::Restarting) => Some("restart"),
            (Some("stopped"), _) => Some("stop"),
            (Some("restarted"), State::Stopped) => Some("start"),
            (Some("restarted"), _) => Some("restart"),
            (Some("reloaded"), State::Running) => Some("reload"),
            (Some("reloaded"), State::Restarting) => Some("restart"),
            (Some("reloaded"), State::Stopped) => Some("start"),
            (Some(other), _) => return Err(StepError::failed(format!("service: state must be started, stopped, restarted or reloaded, not '{other}'"))),
        };
        if let Some(action) = action {
            let what = if m.is_container() { format!("{} ({})", a.name, m.describe()) } else { a.name.clone() };
            plan.changes.push(format!("{action} service {what}"));
            plan.commands = m.action_cmds(action).map_err(|e| StepError::failed(format!("service {}: {e}", a.name)))?;
            // `sleep` between the stop and the start of a restart made of the two.
            if let (Some(n), "restart", 2) = (sleep, action, plan.commands.len()) {
                plan.commands.insert(1, Cmd::argv(["sleep".to_string(), n.to_string()]));
            }
            plan.result.insert("want_running".into(), json!(action != "stop"));
            if action == "stop" || action == "restart" {
                // A container's tier comes from its service name and from the volumes it mounts
                // (the baseline's data paths); stopping changes no data, so nothing is backed up.
                let mounts: Vec<String> = containers.iter().flat_map(|c| c.mounts.iter().map(|m| m.source.clone())).filter(|p| !p.is_empty()).collect();
                let reason = if mounts.is_empty() { format!("{}s service {}", action, a.name) } else { format!("{}s service {} ({}; mounts {})", action, a.name, m.describe(), mounts.join(", ")) };
                plan.destructive = Some(crate::safety::Destructive { reason, services: vec![a.name.clone()], tier_paths: mounts, ..Default::default() });
            }
        }
        if let (Some(_), true) = (a.enabled, m.is_container()) {
            return Err(StepError::failed(format!("service {}: enabled does not apply to {} (its restart policy does: the restart_policy module)", a.name, m.describe())));
        }
        if let (Some(en), Manager::Sysv { name }) = (a.enabled, &m) {
            let n = crate::transport::quote::quote(name);
            let is_en = ctx.run(Cmd::shell(format!("ls /etc/rc[2345].d/S[0-9][0-9]{n} >/dev/null 2>&1"))).await?.ok();
            if is_en != en {
                let verb = if en { "enable" } else { "disable" };
                plan.changes.push(format!("{verb} service {}", a.name));
                plan.commands.push(Cmd::shell(format!("update-rc.d {n} defaults >/dev/null 2>&1; update-rc.d {n} {verb}")).label(format!("update-rc.d {name} {verb}")));
            }
        }
        // For apply's check of the state after the change (taken out there).
        if matches!(m, Manager::Sysv { .. }) && !ctx.check && !plan.commands.is_empty() {
            plan.result.insert("_manager".into(), json!("sysv"));
        }
        if let (Some(en), Manager::Systemd { unit }) = (a.enabled, &m) {
            let is_en = ctx.run(Cmd::argv(["systemctl", "is-enabled", "--quiet", unit.as_str()])).await?.ok();
            if is_en != en {
                let verb = if en { "enable" } else { "disable" };
                plan.changes.push(format!("{verb} service {}", a.name));
                plan.commands.push(Cmd::argv(["systemctl", verb, unit.as_str()]));
            }
        }
        if plan.commands.is_empty() {
            plan.result.remove("_status");
        }
        Ok(plan)
    }

    async fn apply(&self, ctx: &StepCtx<'_>, mut plan: Plan) -> Result<Outcome, StepError> {
        let want = plan.result.get("want_running").and_then(Json::as_bool);
        let name = plan.result.get("name").and_then(Json::as_str).unwrap_or_default().to_string();
        let status = plan.result.remove("_status").and_then(|s| s.as_str().map(str::to_string));
        let sysv = plan.result.remove("_manager").is_some();
        let out = crate::modules::run_plan_commands(ctx, plan).await?;
        if let Some(want) = want {
            let mut m = Manager::lookup(services_of(ctx).as_ref(), &name).map_err(StepError::failed)?;
            if sysv {
                m = Manager::Sysv { name: name.clone() };
            }
            if let (Manager::Commands { status: st, .. }, Some(s)) = (&mut m, status) {
                *st = s;
            }
            // A started daemon may take a moment to write its pid file.
            let mut ok = false;
            let mut last = (crate::docker::State::Stopped, Vec::new());
            for _ in 0..50 {
                last = state(ctx, &m).await?;
                if (last.0 == crate::docker::State::Running) == want && (want || last.0 == crate::docker::State::Stopped) {
                    ok = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            // A container that comes up and falls over again is not started: it must still run,
            // not restarted, a moment later.
            if ok && want && m.is_container() {
                tokio::time::sleep(Duration::from_millis(1500)).await;
                let again = state(ctx, &m).await?;
                let restarts = |cs: &[crate::docker::Container]| cs.iter().map(|c| c.restart_count).sum::<u64>();
                if again.0 != crate::docker::State::Running || restarts(&again.1) != restarts(&last.1) {
                    ok = false;
                }
                last = again;
            }
            if !ok {
                let seen = if m.is_container() {
                    let mut seen: Vec<String> = last.1.iter().map(|c| format!("{} {}", c.name, c.describe())).collect();
                    if seen.is_empty() {
                        seen.push("no container".into());
                    }
                    // The container's last words say why.
                    if let Some(c) = last.1.first() {
                        if let Ok(o) = ctx.run(Cmd::shell(format!("docker logs --tail 3 {} 2>&1", crate::transport::quote::quote(&c.name)))).await {
                            let tail = o.stdout_str();
                            if !tail.trim().is_empty() {
                                seen.push(format!("last log lines: {}", tail.trim().lines().collect::<Vec<_>>().join(" | ")));
                            }
                        }
                    }
                    seen.join("; ")
                } else {
                    format!("status: `{}`", m.status_cmd().display())
                };
                return Err(StepError::failed(format!(
                    "host {}: service {name} is {} after the change ({seen})",
                    ctx.host,
                    if want { "not running" } else { "still running" },
                )));
            }
        }
        Ok(out)
    }
}
