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
}

impl Outcome {
    pub fn pass(e: impl Into<String>) -> Outcome {
        Outcome { ok: true, evidence: e.into() }
    }
    pub fn fail(e: impl Into<String>) -> Outcome {
        Outcome { ok: false, evidence: e.into() }
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
    fn durations() {
        assert_eq!(seconds("25h"), Some(90000));
        assert_eq!(seconds("15m"), Some(900));
        assert_eq!(seconds("600"), Some(600));
        assert_eq!(seconds("x"), None);
    }
}
