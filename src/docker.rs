//! Docker on a host, through its own `docker` command: the containers' state in
//! one round trip (`docker inspect`), and the shell words of a Compose project
//! (`docker compose` when the v2 plugin is there, else `docker-compose`, else
//! the services entry's own `command`). Used by the `docker` and `compose`
//! service managers, `container_facts`, `restart_policy`, `docker_orphans` and
//! the `docker` probe of the gates.

use serde_json::{json, Value as Json};

use crate::transport::quote::quote;
use crate::transport::Cmd;

/// One container, as `docker inspect` describes it (the fields recover reads).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Container {
    pub name: String,
    pub id: String,
    pub image: String,
    /// created, running, restarting, paused, exited, dead
    pub status: String,
    pub running: bool,
    pub restarting: bool,
    pub exit_code: i64,
    pub restart_count: u64,
    /// healthy, unhealthy, starting; `None` without a health check
    pub health: Option<String>,
    /// no, always, unless-stopped, on-failure[:N]
    pub restart_policy: String,
    pub started_at: String,
    pub finished_at: String,
    pub mounts: Vec<Mount>,
    pub compose_project: Option<String>,
    pub compose_service: Option<String>,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Mount {
    /// volume or bind
    pub kind: String,
    /// The volume's name (volumes only).
    pub name: Option<String>,
    /// The path on the host.
    pub source: String,
    /// The path in the container.
    pub destination: String,
    pub rw: bool,
}

impl Container {
    /// From one element of `docker inspect`'s JSON array.
    pub fn from_inspect(v: &Json) -> Container {
        let s = |p: &str| v.pointer(p).and_then(Json::as_str).unwrap_or_default().to_string();
        let policy = {
            let name = s("/HostConfig/RestartPolicy/Name");
            let n = v.pointer("/HostConfig/RestartPolicy/MaximumRetryCount").and_then(Json::as_u64).unwrap_or(0);
            match (name.as_str(), n) {
                ("", _) => "no".to_string(),
                ("on-failure", n) if n > 0 => format!("on-failure:{n}"),
                (other, _) => other.to_string(),
            }
        };
        let mounts = v
            .get("Mounts")
            .and_then(Json::as_array)
            .map(|ms| {
                ms.iter()
                    .map(|m| Mount {
                        kind: m["Type"].as_str().unwrap_or_default().to_string(),
                        name: m["Name"].as_str().filter(|n| !n.is_empty()).map(str::to_string),
                        source: m["Source"].as_str().unwrap_or_default().to_string(),
                        destination: m["Destination"].as_str().unwrap_or_default().to_string(),
                        rw: m["RW"].as_bool().unwrap_or(true),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let label = |k: &str| v.pointer("/Config/Labels").and_then(|l| l.get(k)).and_then(Json::as_str).map(str::to_string);
        Container {
            name: s("/Name").trim_start_matches('/').to_string(),
            id: s("/Id"),
            image: s("/Config/Image"),
            status: s("/State/Status"),
            running: v.pointer("/State/Running").and_then(Json::as_bool).unwrap_or(false),
            restarting: v.pointer("/State/Restarting").and_then(Json::as_bool).unwrap_or(false),
            exit_code: v.pointer("/State/ExitCode").and_then(Json::as_i64).unwrap_or(0),
            restart_count: v.get("RestartCount").and_then(Json::as_u64).unwrap_or(0),
            health: v.pointer("/State/Health/Status").and_then(Json::as_str).map(str::to_string),
            restart_policy: policy,
            started_at: s("/State/StartedAt"),
            finished_at: s("/State/FinishedAt"),
            mounts,
            compose_project: label("com.docker.compose.project"),
            compose_service: label("com.docker.compose.service"),
        }
    }

    /// "running", "restarting (exit 1, 12 restarts)", "exited (137)", "running, unhealthy".
    pub fn describe(&self) -> String {
        let mut s = match self.status.as_str() {
            "restarting" => format!("restarting (exit {}, {} restarts: a restart loop)", self.exit_code, self.restart_count),
            "exited" | "dead" => format!("{} ({})", self.status, self.exit_code),
            other => other.to_string(),
        };
        if let Some(h) = &self.health {
            s.push_str(&format!(", {h}"));
        }
        s
    }

    pub fn as_fact(&self) -> Json {
        json!(self)
    }
}

/// `docker inspect` of the containers whose ids `list` (a shell command) prints, as one JSON
/// array (`[]` when it prints none).
pub fn inspect_listed(list: &str) -> String {
    format!("ids=$({list}) || exit $?; if [ -z \"$ids\" ]; then echo '[]'; else docker inspect --type container $ids; fi")
}

/// Every container of a Compose project (by its label), inspected.
pub fn inspect_project_cmd(project: &str) -> Cmd {
    Cmd::shell(inspect_listed(&format!("docker ps -aq --no-trunc --filter label=com.docker.compose.project={}", quote(project))))
}

/// `docker inspect` of the named containers (all of them when `names` is empty), as one JSON
/// array on stdout; a name that does not exist is left out (and named on stderr).
pub fn inspect_cmd(names: &[String]) -> Cmd {
    if names.is_empty() {
        return Cmd::shell(inspect_listed("docker ps -aq --no-trunc"));
    }
    // docker inspect prints the ones it found, and exits 1 naming the others on stderr.
    let list: Vec<String> = names.iter().map(|n| quote(n)).collect();
    Cmd::shell(format!("docker inspect --type container {}", list.join(" ")))
}

/// The containers in `docker inspect`'s output.
pub fn parse_inspect(stdout: &str) -> Result<Vec<Container>, String> {
    if stdout.trim().is_empty() {
        return Ok(Vec::new());
    }
    let v: Json = serde_json::from_str(stdout.trim()).map_err(|e| format!("docker inspect gave no JSON ({e}): {}", stdout.chars().take(200).collect::<String>()))?;
    Ok(v.as_array().map(|a| a.iter().map(Container::from_inspect).collect()).unwrap_or_default())
}

/// The containers a `docker inspect` run found; an error when Docker itself did not answer.
pub fn containers_from(out: &crate::transport::Output) -> Result<Vec<Container>, String> {
    let stdout = out.stdout_str();
    let stderr = out.stderr_str();
    if out.rc != 0 && stdout.trim().trim_matches(|c| c == '[' || c == ']').trim().is_empty() && !stderr.contains("No such") {
        return Err(format!("docker did not answer (exit {}): {}", out.rc, stderr.trim().chars().take(300).collect::<String>()));
    }
    parse_inspect(&stdout)
}

/// A Compose project on a host: where it lives and how to call Compose there.
#[derive(Clone, Debug, PartialEq)]
pub struct Compose {
    pub project_dir: String,
    pub files: Vec<String>,
    pub project: Option<String>,
    /// The entry's own Compose command (`docker compose`, `docker-compose`, a path).
    pub command: Option<String>,
}

impl Compose {
    /// A shell script: `cd` to the project, then Compose with `args` (already shell words).
    pub fn script(&self, args: &str) -> String {
        let mut opts = String::new();
        for f in &self.files {
            opts.push_str(&format!(" -f {}", quote(f)));
        }
        if let Some(p) = &self.project {
            opts.push_str(&format!(" -p {}", quote(p)));
        }
        let call = match &self.command {
            Some(c) => format!("{c}{opts} \"$@\""),
            None => format!("if docker compose version >/dev/null 2>&1; then docker compose{opts} \"$@\"; else docker-compose{opts} \"$@\"; fi"),
        };
        format!("cd {} || exit 1; compose() {{ {call}; }}; compose {args}", quote(&self.project_dir))
    }

    /// The containers of one service, inspected (one JSON array).
    pub fn inspect_service_cmd(&self, service: &str) -> Cmd {
        Cmd::shell(format!("{}; {}", self.script("version >/dev/null 2>&1 || true"), inspect_listed(&format!("compose ps -q {}", quote(service)))))
        .label(format!("compose ps -q {service} | docker inspect (in {})", self.project_dir))
    }
}

/// A services entry's state across its containers: running only when every one runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Running,
    /// Restarting, or running but not healthy: up, yet not serving.
    Restarting,
    Stopped,
}

pub fn state_of(containers: &[Container]) -> State {
    if containers.is_empty() {
        return State::Stopped;
    }
    if containers.iter().any(|c| c.restarting || c.status == "restarting") {
        return State::Restarting;
    }
    if containers.iter().all(|c| c.running) {
        return State::Running;
    }
    if containers.iter().any(|c| c.running) {
        return State::Restarting;
    }
    State::Stopped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_inspect() {
        let j = r#"[{"Id":"abc","Name":"/sentry_kafka_1","RestartCount":7,"State":{"Status":"restarting","Running":true,"Restarting":true,"ExitCode":1,"StartedAt":"s","FinishedAt":"f"},
            "HostConfig":{"RestartPolicy":{"Name":"on-failure","MaximumRetryCount":5}},"Config":{"Image":"img","Labels":{"com.docker.compose.project":"sentry","com.docker.compose.service":"kafka"}},
            "Mounts":[{"Type":"volume","Name":"kafka","Source":"/var/lib/docker/volumes/kafka/_data","Destination":"/var/lib/kafka","RW":true}]}]"#;
        let c = &parse_inspect(j).unwrap()[0];
        assert_eq!(c.name, "sentry_kafka_1");
        assert_eq!(c.restart_policy, "on-failure:5");
        assert_eq!(c.compose_service.as_deref(), Some("kafka"));
        assert_eq!(c.mounts[0].name.as_deref(), Some("kafka"));
        assert_eq!(state_of(std::slice::from_ref(c)), State::Restarting);
        assert!(c.describe().contains("restart loop"));
        assert_eq!(state_of(&[]), State::Stopped);
    }

    #[test]
    fn compose_words() {
        let c = Compose { project_dir: "/srv/sentry".into(), files: vec![], project: Some("sentry".into()), command: None };
        let s = c.script("stop kafka");
        assert!(s.starts_with("cd /srv/sentry || exit 1;") && s.contains("docker compose -p sentry \"$@\"") && s.contains("docker-compose -p sentry") && s.ends_with("compose stop kafka"));
        let own = Compose { command: Some("/opt/bin/compose".into()), ..c };
        assert!(own.script("ps").contains("/opt/bin/compose -p sentry \"$@\""));
    }
}
