//! The probes of the cold-start gates. Each is read-only, bounded by its
//! timeout, and returns pass/fail with the evidence an operator needs.

use std::time::{Duration, Instant};

use serde_json::Value as Json;

use crate::transport::{Cmd, Connection};

/// What one probe found.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Outcome {
    pub ok: bool,
    pub evidence: String,
    /// What to do instead of the probe's own suggestion (storage corruption: do not restart).
    #[serde(skip)]
    pub advice: Option<String>,
}

impl Outcome {
    pub fn pass(e: impl Into<String>) -> Outcome {
        Outcome { ok: true, evidence: e.into(), advice: None }
    }
    pub fn fail(e: impl Into<String>) -> Outcome {
        Outcome { ok: false, evidence: e.into(), advice: None }
    }
}

/// SOP 10.1: log lines that mean storage corruption, not ordinary flakiness.
pub const CORRUPTION_SIGNATURES: &[&str] = &[
    "Bad message",
    "Structure needs cleaning",
    "Unknown codec",
    "could not locate a valid checkpoint record",
    "Malformed line in checkpoint file",
    "broken and needs manual correction",
];

/// The first log line with a storage-corruption signature: (signature, line).
pub fn corruption_in(log: &str) -> Option<(&'static str, String)> {
    // The newest evidence is the one that matters: search from the end.
    log.lines().rev().find_map(|l| CORRUPTION_SIGNATURES.iter().find(|s| l.contains(**s)).map(|s| (*s, l.trim().chars().take(240).collect())))
}

/// The SOP's answer to corruption found in `source`'s log: BLOCK, never a restart.
fn corruption_outcome(source: &str, sig: &str, line: &str, playbook: Option<&str>, host: &str) -> Outcome {
    let on = if host.is_empty() { String::new() } else { format!(" --host {host}") };
    let run = playbook.map(|p| format!("run recover play {p}{on} --dry-run; ")).unwrap_or_default();
    let advice = format!("storage corruption below the container: do not restart; {run}plan an offline fsck or a restore");
    Outcome { ok: false, evidence: format!("{source}: '{sig}' in its log ({line}): {advice}"), advice: Some(advice) }
}

fn names(v: &Json) -> Vec<String> {
    match v {
        Json::String(s) => vec![s.clone()],
        Json::Array(a) => a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect(),
        _ => Vec::new(),
    }
}

/// `docker`: the named containers (or a Compose project's) run, are healthy when they have a
/// health check, are not restarting, and their restart count has not risen since the last
/// attempt (watch mode). A failing container's recent log is read for SOP 10.1's signatures.
pub async fn docker(conn: &Connection, host: &str, args: &Json, last_counts: &mut std::collections::HashMap<String, u64>) -> Outcome {
    let wanted = names(&args["containers"]);
    let project = s(args, "project");
    let cmd = if project.is_empty() {
        crate::docker::inspect_cmd(&wanted)
    } else {
        crate::docker::inspect_project_cmd(&project)
    };
    let out = match conn.exec(&cmd).await {
        Ok(o) => o,
        Err(e) => return Outcome::fail(e.to_string()),
    };
    let cs = match crate::docker::containers_from(&out) {
        Ok(c) => c,
        Err(e) => return Outcome::fail(e),
    };
    let mut bad = Vec::new();
    for w in &wanted {
        if !cs.iter().any(|c| &c.name == w) {
            bad.push((w.clone(), format!("{w}: no such container")));
        }
    }
    if !project.is_empty() && cs.is_empty() {
        bad.push((String::new(), format!("compose project {project}: no containers")));
    }
    for c in &cs {
        let before = last_counts.insert(c.name.clone(), c.restart_count);
        let why = if c.restarting || c.status == "restarting" {
            Some(format!("{} is in a restart loop (exit {}, {} restarts)", c.name, c.exit_code, c.restart_count))
        } else if !c.running {
            Some(format!("{} is {}", c.name, c.describe()))
        } else if c.health.as_deref().is_some_and(|h| h != "healthy") {
            Some(format!("{} is {}", c.name, c.describe()))
        } else if before.is_some_and(|b| c.restart_count > b) {
            Some(format!("{} restarted {} time(s) since the last attempt ({} restarts): a restart loop", c.name, c.restart_count - before.unwrap_or(0), c.restart_count))
        } else {
            None
        };
        if let Some(w) = why {
            bad.push((c.name.clone(), w));
        }
    }
    if bad.is_empty() {
        let shown: Vec<String> = cs.iter().map(|c| format!("{} {} ({} restarts)", c.name, c.describe(), c.restart_count)).collect();
        return Outcome::pass(shown.join(", "));
    }
    // A failing container whose log names storage corruption: the SOP says do not restart.
    let tail = args["logs_tail"].as_u64().unwrap_or(2000);
    let playbook = args["corruption_playbook"].as_str();
    for (name, why) in &bad {
        if name.is_empty() {
            continue;
        }
        let logs = Cmd::shell(container_log_script(name, tail));
        if let Ok(o) = conn.exec(&logs).await {
            if let Some((sig, line)) = corruption_in(&o.stdout_str()) {
                let mut out = corruption_outcome(name, sig, &line, playbook, host);
                out.evidence = format!("{why}; {}", out.evidence);
                return out;
            }
        }
    }
    Outcome::fail(bad.into_iter().map(|(_, w)| w).collect::<Vec<_>>().join("; "))
}

/// A container's log since its last start (a restart loop's last attempt included; what it
/// said before a repair restarted it is not), at most `tail` lines.
fn container_log_script(name: &str, tail: u64) -> String {
    let c = crate::transport::quote::quote(name);
    format!("since=$(docker inspect --type container -f '{{{{.State.StartedAt}}}}' {c}) && docker logs --since \"$since\" --tail {tail} {c} 2>&1")
}

/// `storage_log`: a service's recent log (a container's, a unit's journal, a file, a command's
/// output) has none of SOP 10.1's storage-corruption signatures.
pub async fn storage_log(conn: &Connection, host: &str, args: &Json, timeout: Duration) -> Outcome {
    let lines = args["lines"].as_u64().unwrap_or(2000);
    let q = |k: &str| crate::transport::quote::quote(&s(args, k));
    let (source, cmd) = if !s(args, "container").is_empty() {
        (format!("container {}", s(args, "container")), container_log_script(&s(args, "container"), lines))
    } else if !s(args, "unit").is_empty() {
        (format!("unit {}", s(args, "unit")), format!("journalctl -u {} -n {lines} --no-pager 2>&1", q("unit")))
    } else if !s(args, "file").is_empty() {
        (s(args, "file"), format!("tail -n {lines} {}", q("file")))
    } else {
        (format!("`{}`", s(args, "command")), s(args, "command"))
    };
    let out = match conn.exec(&Cmd::shell(cmd).timeout(Some(timeout.as_secs().max(1)))).await {
        Ok(o) => o,
        Err(e) => return Outcome::fail(e.to_string()),
    };
    if !out.ok() && out.stdout_str().trim().is_empty() {
        return Outcome::fail(format!("{source}: the log could not be read (exit {}): {}", out.rc, out.stderr_str().trim()));
    }
    match corruption_in(&out.stdout_str()) {
        Some((sig, line)) => corruption_outcome(&source, sig, &line, args["playbook"].as_str(), host),
        None => Outcome::pass(format!("{source}: no storage-corruption signature in its last {lines} log lines")),
    }
}

fn s(args: &Json, k: &str) -> String {
    match &args[k] {
        Json::String(v) => v.clone(),
        Json::Null => String::new(),
        other => other.to_string(),
    }
}

/// `25h`, `15m`, `90s`, `600` -> seconds.
pub fn seconds(text: &str) -> Option<u64> {
    let t = text.trim();
    let (num, mult) = match t.chars().last()? {
        'h' => (&t[..t.len() - 1], 3600),
        'm' => (&t[..t.len() - 1], 60),
        's' => (&t[..t.len() - 1], 1),
        'd' => (&t[..t.len() - 1], 86400),
        _ => (t, 1),
    };
    num.trim().parse::<f64>().ok().map(|n| (n * mult as f64) as u64)
}

/// `tcp`: a connection to `address` (host:port) from here.
pub async fn tcp(args: &Json, timeout: Duration) -> Outcome {
    let addr = s(args, "address");
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(&addr)).await {
        Ok(Ok(_)) => Outcome::pass(format!("{addr} accepts connections")),
        Ok(Err(e)) => Outcome::fail(format!("{addr}: {e}")),
        Err(_) => Outcome::fail(format!("{addr}: no answer in {}s", timeout.as_secs())),
    }
}

fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder().timeout_global(Some(timeout)).http_status_as_error(false).build().into()
}

/// `http`: GET `url` from here; the status must be one of `status` (default 200), the body match `body_regex`.
pub async fn http(args: &Json, timeout: Duration) -> Outcome {
    let url = s(args, "url");
    let want: Vec<u16> = match &args["status"] {
        Json::Array(v) => v.iter().filter_map(|x| x.as_u64().map(|n| n as u16).or_else(|| x.as_str().and_then(|s| s.parse().ok()))).collect(),
        Json::Number(n) => vec![n.as_u64().unwrap_or(200) as u16],
        _ => vec![200],
    };
    let body_re = args["body_regex"].as_str().map(str::to_string);
    let res = tokio::task::spawn_blocking(move || -> Result<(u16, String), String> {
        let mut resp = agent(timeout).get(&url).call().map_err(|e| format!("{url}: {e}"))?;
        let status = resp.status().as_u16();
        let body = resp.body_mut().with_config().limit(1 << 20).read_to_string().unwrap_or_default();
        Ok((status, body))
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|r| r);
    let url = s(args, "url");
    match res {
        Err(e) => Outcome::fail(e),
        Ok((status, body)) => {
            if !want.contains(&status) {
                return Outcome::fail(format!("{url} returned {status}, expected {want:?}"));
            }
            if let Some(re) = body_re {
                match regex::Regex::new(&re) {
                    Ok(r) if r.is_match(&body) => {}
                    Ok(_) => return Outcome::fail(format!("{url} returned {status}, but the body does not match /{re}/")),
                    Err(e) => return Outcome::fail(format!("bad body_regex: {e}")),
                }
            }
            Outcome::pass(format!("{url} returned {status}"))
        }
    }
}

/// POSTs JSON to `url`; passes on a 2xx.
pub async fn post_json(url: &str, body: String, timeout: Duration) -> Outcome {
    let u = url.to_string();
    let res = tokio::task::spawn_blocking(move || agent(timeout).post(&u).header("Content-Type", "application/json").send(body.as_bytes()).map(|r| r.status().as_u16()))
        .await;
    match res {
        Ok(Ok(code)) if (200..300).contains(&code) => Outcome::pass(format!("POST {url} returned {code}")),
        Ok(Ok(code)) => Outcome::fail(format!("POST {url} returned {code}")),
        Ok(Err(e)) => Outcome::fail(format!("POST {url}: {e}")),
        Err(e) => Outcome::fail(e.to_string()),
    }
}

/// `command`: a read-only command on the host; exit 0 (and `stdout_regex`) passes.
pub async fn command(conn: &Connection, args: &Json, timeout: Duration) -> Outcome {
    let cmd = s(args, "command");
    match conn.exec(&Cmd::shell(cmd.clone()).timeout(Some(timeout.as_secs().max(1)))).await {
        Err(e) => Outcome::fail(format!("{e}")),
        Ok(out) => {
            let text = format!("{}{}", out.stdout_str(), out.stderr_str());
            let tail: String = text.trim().lines().last().unwrap_or("").chars().take(200).collect();
            if out.rc != 0 {
                return Outcome::fail(format!("`{cmd}` exited {}{}", out.rc, if tail.is_empty() { String::new() } else { format!(": {tail}") }));
            }
            if let Some(re) = args["stdout_regex"].as_str() {
                if !regex::Regex::new(re).map(|r| r.is_match(&out.stdout_str())).unwrap_or(false) {
                    return Outcome::fail(format!("`{cmd}` output does not match /{re}/: {tail}"));
                }
            }
            Outcome::pass(if tail.is_empty() { "exit 0".to_string() } else { tail })
        }
    }
}

/// `metric_age`: a Prometheus textfile's metric (a unix timestamp), or the file's mtime, no older than `max_age`.
pub async fn metric_age(conn: &Connection, args: &Json) -> Outcome {
    let file = s(args, "file");
    let max = seconds(&s(args, "max_age")).unwrap_or(0);
    let out = match conn.exec(&Cmd::shell(format!("stat -c %Y {0} && cat {0}", crate::transport::quote::quote(&file)))).await {
        Ok(o) if o.ok() => o.stdout_str(),
        Ok(o) => return Outcome::fail(format!("{file}: {}", o.stderr_str().trim())),
        Err(e) => return Outcome::fail(e.to_string()),
    };
    let now = chrono::Utc::now().timestamp() as f64;
    let mut lines = out.lines();
    let mtime: f64 = lines.next().and_then(|l| l.trim().parse().ok()).unwrap_or(0.0);
    let metric = s(args, "metric");
    let stamp = if metric.is_empty() {
        mtime
    } else {
        match lines.filter(|l| !l.starts_with('#')).find_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            (name == metric || name.starts_with(&format!("{metric}{{"))).then(|| value.trim().parse::<f64>().ok()).flatten()
        }) {
            Some(v) => v,
            None => return Outcome::fail(format!("{file} has no {metric}")),
        }
    };
    let age = (now - stamp).max(0.0) as u64;
    let what = if metric.is_empty() { format!("{file} written") } else { metric };
    if age <= max {
        Outcome::pass(format!("{what} {}s ago (max {}s)", age, max))
    } else {
        Outcome::fail(format!("{what} {}s ago, older than {}s", age, max))
    }
}

/// `systemd_props`: `systemctl show` of `unit` must report every expected property.
pub async fn systemd_props(conn: &Connection, args: &Json) -> Outcome {
    let unit = s(args, "unit");
    let Json::Object(want) = &args["properties"] else { return Outcome::fail("`properties` must map names to values") };
    let props: Vec<String> = want.keys().cloned().collect();
    let out = match conn.exec(&crate::facts::systemctl_show_cmd(&unit, &props)).await {
        Ok(o) if o.ok() => o.stdout_str(),
        Ok(o) => return Outcome::fail(format!("systemctl show {unit}: {}", o.stderr_str().trim())),
        Err(e) => return Outcome::fail(e.to_string()),
    };
    let got = crate::facts::parse_systemctl_show(&out);
    let text = |v: &Json| match v {
        Json::String(x) => x.clone(),
        other => other.to_string(),
    };
    let wrong: Vec<String> = want
        .iter()
        .filter(|(k, v)| got.get(*k).and_then(Json::as_str) != Some(text(v).as_str()))
        .map(|(k, v)| format!("{k}={} (want {})", got.get(k).and_then(Json::as_str).unwrap_or("?"), text(v)))
        .collect();
    if wrong.is_empty() {
        Outcome::pass(format!("{unit}: {}", want.keys().map(|k| format!("{k}={}", got.get(k).and_then(Json::as_str).unwrap_or("?"))).collect::<Vec<_>>().join(" ")))
    } else {
        Outcome::fail(format!("{unit}: {}", wrong.join(", ")))
    }
}

/// `load`: load per core now, and since when it has been under `max_per_core`.
pub async fn load(conn: &Connection, args: &Json, below_since: &mut Option<Instant>) -> Outcome {
    let max: f64 = args["max_per_core"].as_f64().or_else(|| s(args, "max_per_core").parse().ok()).unwrap_or(1.0);
    let sustained = seconds(&s(args, "sustained")).unwrap_or(0);
    let out = match conn.exec(&Cmd::shell("cut -d' ' -f1 /proc/loadavg; nproc")).await {
        Ok(o) if o.ok() => o.stdout_str(),
        Ok(o) => return Outcome::fail(o.stderr_str()),
        Err(e) => return Outcome::fail(e.to_string()),
    };
    let nums: Vec<f64> = out.lines().filter_map(|l| l.trim().parse().ok()).collect();
    let per_core = nums.first().copied().unwrap_or(0.0) / nums.get(1).copied().unwrap_or(1.0).max(1.0);
    if per_core >= max {
        *below_since = None;
        return Outcome::fail(format!("load/core {per_core:.2} >= {max}"));
    }
    let since = *below_since.get_or_insert_with(Instant::now);
    let held = since.elapsed().as_secs();
    if held >= sustained {
        Outcome::pass(format!("load/core {per_core:.2} < {max}{}", if sustained > 0 { format!(" for {held}s") } else { String::new() }))
    } else {
        Outcome::fail(format!("load/core {per_core:.2} < {max}, but only for {held}s of the {sustained}s required (keep watching)"))
    }
}

#[cfg(test)]
mod tests {
    use super::seconds;

    #[test]
    fn corruption_signatures() {
        let log = "ok\n2026.12.02 <Error> Application: Code: 231. DB::Exception: Part x is broken and needs manual correction: Bad message\nlater";
        let (sig, line) = super::corruption_in(log).unwrap();
        assert_eq!(sig, "Bad message");
        assert!(line.contains("Part x"));
        assert!(super::corruption_in("all fine\nrestarting").is_none());
        let o = super::corruption_outcome("c", sig, &line, Some("clickhouse-clone"), "188");
        assert!(!o.ok && o.advice.unwrap().starts_with("storage corruption below the container: do not restart; run recover play clickhouse-clone --host 188 --dry-run"));
    }

    #[test]
    fn durations() {
        assert_eq!(seconds("25h"), Some(90000));
        assert_eq!(seconds("15m"), Some(900));
        assert_eq!(seconds("600"), Some(600));
        assert_eq!(seconds("x"), None);
    }
}
