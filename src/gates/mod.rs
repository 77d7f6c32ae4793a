//! The cold-start phase gates (SOP 1.2, 13): every probe of the baseline runs
//! concurrently (bounded), each with its timeout, so a pass takes about as
//! long as its slowest probe. Gates are then judged in dependency order:
//! BLOCKED (a required probe failed, or a gate it depends on is BLOCKED),
//! WARN (only advisory probes failed), PASS. The first gate blocked by its own
//! probes is the thing to fix, with its suggestion.

pub mod probes;
pub mod textfile;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{json, Value as Json};
use tokio::sync::{Mutex, Semaphore};

use crate::baseline::{Baseline, ProbeSpec};
use crate::executor::{vars, VarSources};
use crate::transport::{Cmd, Connection};

/// A gate's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Status {
    #[serde(rename = "PASS")]
    Pass,
    #[serde(rename = "WARN")]
    Warn,
    #[serde(rename = "BLOCKED")]
    Blocked,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Warn => "WARN",
            Status::Blocked => "BLOCKED",
        }
    }
}

/// One probe's result.
#[derive(Clone, Debug, Serialize)]
pub struct ProbeResult {
    pub name: String,
    pub host: Option<String>,
    pub required: bool,
    pub ok: bool,
    pub evidence: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suggest: Option<String>,
}

/// One gate's result.
#[derive(Clone, Debug, Serialize)]
pub struct GateResult {
    pub name: String,
    pub status: Status,
    pub probes: Vec<ProbeResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked_by: Option<String>,
}

/// One check pass.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub gates: Vec<GateResult>,
    pub pass: usize,
    pub warn: usize,
    pub blocked: usize,
    /// GREEN, DEGRADED or BLOCKED.
    pub result: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_blocked: Option<String>,
    pub at: i64,
    pub seconds: f64,
}

impl Report {
    pub fn exit_code(&self) -> i32 {
        match self.result.as_str() {
            "GREEN" => 0,
            "DEGRADED" => 1,
            _ => 2,
        }
    }
}

/// A host's connection, or why it could not be made (kept for the rest of the pass).
type Slot = Arc<Mutex<Option<Result<Arc<Connection>, String>>>>;

/// Runs check passes over a baseline; keeps connections and load history between passes (watch mode).
pub struct Checker {
    pub baseline: Baseline,
    pub sources: Arc<VarSources>,
    pub send_alert_test: bool,
    pub parallel: usize,
    /// One connection per host, opened once however many of its probes ask at the same time.
    conns: Mutex<HashMap<String, Slot>>,
    load_since: Mutex<HashMap<String, Option<Instant>>>,
    /// Each container's restart count at the last attempt, per docker probe.
    restart_counts: Mutex<HashMap<String, HashMap<String, u64>>>,
}

impl Checker {
    pub fn new(baseline: Baseline, sources: Arc<VarSources>, send_alert_test: bool) -> Checker {
        Checker { baseline, sources, send_alert_test, parallel: 64, conns: Mutex::new(HashMap::new()), load_since: Mutex::new(HashMap::new()), restart_counts: Mutex::new(HashMap::new()) }
    }

    /// The host's connection: the first probe to ask opens it, the others wait for it; a
    /// failure is the answer for the rest of the pass (the next pass tries again).
    async fn connection(&self, host: &str) -> Result<Arc<Connection>, String> {
        let slot = self.conns.lock().await.entry(host.to_string()).or_default().clone();
        let mut slot = slot.lock().await;
        if let Some(known) = &*slot {
            return known.clone();
        }
        let made = self.open(host).await;
        *slot = Some(made.clone());
        made
    }

    async fn open(&self, host: &str) -> Result<Arc<Connection>, String> {
        if !self.sources.inventory().hosts.contains_key(host) {
            return Err(format!("host {host} is not in the inventory"));
        }
        let ctx = self.sources.inventory_context(host);
        let target = vars::target(&ctx, host)?;
        let conn = tokio::time::timeout(Duration::from_secs(15), Connection::open(&target))
            .await
            .map_err(|_| format!("host {host}: no SSH answer in 15s"))?
            .map_err(|e| format!("host {host} ({}): {e}", target.address))?;
        Ok(Arc::new(conn))
    }

    /// Forgets a host's connection (it failed; the next pass reconnects).
    async fn drop_connection(&self, host: &str) {
        self.conns.lock().await.remove(host);
    }

    fn context(&self, host: Option<&str>) -> minijinja::Value {
        self.sources.inventory_context(host.unwrap_or("localhost"))
    }

    async fn run_probe(&self, spec: &ProbeSpec) -> ProbeResult {
        let ctx = self.context(spec.host.as_deref());
        let args = match self.sources.templates.render_value(&Json::Object(spec.args.clone()), &ctx, &spec.span) {
            Ok(a) => a,
            Err(e) => return ProbeResult { name: spec.name.clone(), host: spec.host.clone(), required: spec.required, ok: false, evidence: e.to_string(), suggest: None },
        };
        let timeout = Duration::from_secs(spec.timeout.max(1));
        let out = match spec.kind.as_str() {
            "tcp" => probes::tcp(&args, timeout).await,
            "http" => probes::http(&args, timeout).await,
            kind => {
                let host = spec.host.clone().unwrap_or_default();
                match self.connection(&host).await {
                    Err(e) => probes::Outcome::fail(format!("unreachable: {e}")),
                    Ok(conn) => {
                        let fut = async {
                            match kind {
                                "ssh" => match conn.exec(&Cmd::shell("true")).await {
                                    Ok(o) if o.ok() => probes::Outcome::pass("SSH ok"),
                                    Ok(o) => probes::Outcome::fail(format!("SSH: {}", o.stderr_str())),
                                    Err(e) => probes::Outcome::fail(e.to_string()),
                                },
                                "command" => probes::command(&conn, &args, timeout).await,
                                "metric_age" => probes::metric_age(&conn, &args).await,
                                "systemd_props" => probes::systemd_props(&conn, &args).await,
                                "storage_log" => probes::storage_log(&conn, &host, &args, timeout).await,
                                "docker" => {
                                    let key = format!("{host}/{}", spec.name);
                                    let mut counts = self.restart_counts.lock().await.remove(&key).unwrap_or_default();
                                    let o = probes::docker(&conn, &host, &args, &mut counts).await;
                                    self.restart_counts.lock().await.insert(key, counts);
                                    o
                                }
                                "load" => {
                                    let key = format!("{host}/{}", spec.name);
                                    let mut since = self.load_since.lock().await.get(&key).copied().flatten();
                                    let o = probes::load(&conn, &args, &mut since).await;
                                    self.load_since.lock().await.insert(key, since);
                                    o
                                }
                                other => probes::Outcome::fail(format!("unknown probe type {other}")),
                            }
                        };
                        match tokio::time::timeout(timeout + Duration::from_secs(2), fut).await {
                            Ok(o) => {
                                if o.evidence.contains("connection lost") {
                                    self.drop_connection(&host).await;
                                }
                                o
                            }
                            Err(_) => probes::Outcome::fail(format!("no answer in {}s", timeout.as_secs())),
                        }
                    }
                }
            }
        };
        let mut suggest = None;
        if let (false, Some(a)) = (out.ok, &out.advice) {
            suggest = Some(a.clone());
        } else if !out.ok {
            if let Some(sg) = &spec.suggest {
                let shown = match (&spec.suggest_if, &spec.host) {
                    (Some(cond), Some(host)) => match (self.sources.templates.render_shell(cond, &ctx, &spec.span), self.connection(host).await) {
                        (Ok(c), Ok(conn)) => conn.exec(&Cmd::shell(c).timeout(Some(10))).await.map(|o| o.ok()).unwrap_or(false),
                        _ => false,
                    },
                    _ => true,
                };
                if shown {
                    suggest = self.sources.templates.render_str(sg, &ctx, &spec.span).ok();
                }
            }
        }
        ProbeResult { name: spec.name.clone(), host: spec.host.clone(), required: spec.required, ok: out.ok, evidence: out.evidence, suggest }
    }

    /// The SOP's alert-chain check: a real POST with --send-alert-test, else a warning on purpose.
    async fn alert_probe(&self) -> Option<(String, ProbeResult)> {
        let (phase, url, host) = self.baseline.alert_test.clone()?;
        let name = "Alertmanager webhook end to end (E2E test alert)".to_string();
        if !self.send_alert_test {
            return Some((phase, ProbeResult { name, host, required: false, ok: false, evidence: "not sent: run with --send-alert-test to prove the alert chain (WARN on purpose)".into(), suggest: None }));
        }
        let ctx = self.context(host.as_deref());
        let url = match self.sources.templates.render_str(&url, &ctx, &crate::error::Span::file(&self.baseline.path)) {
            Ok(u) => u,
            Err(e) => return Some((phase, ProbeResult { name, host, required: true, ok: false, evidence: e.to_string(), suggest: None })),
        };
        let out = probes::post_json(&url, alert_payload(), Duration::from_secs(10)).await;
        Some((phase, ProbeResult { name, host, required: true, ok: out.ok, evidence: out.evidence, suggest: None }))
    }

    /// One pass over every gate.
    pub async fn pass(self: &Arc<Self>) -> Report {
        let started = Instant::now();
        // Hosts that could not be reached last pass are tried again.
        let mut conns = self.conns.lock().await;
        let mut keep = HashMap::new();
        for (host, slot) in conns.drain() {
            if matches!(&*slot.lock().await, Some(Ok(_))) {
                keep.insert(host, slot);
            }
        }
        *conns = keep;
        drop(conns);
        let sem = Arc::new(Semaphore::new(self.parallel.max(1)));
        let mut handles = Vec::new();
        for (pi, phase) in self.baseline.phases.iter().enumerate() {
            for (qi, spec) in phase.probes.iter().enumerate() {
                let (me, sem, spec) = (self.clone(), sem.clone(), spec.clone());
                handles.push(tokio::spawn(async move {
                    let _p = sem.acquire_owned().await;
                    (pi, qi, me.run_probe(&spec).await)
                }));
            }
        }
        let alert = self.alert_probe();
        let mut results: Vec<Vec<Option<ProbeResult>>> = self.baseline.phases.iter().map(|p| vec![None; p.probes.len()]).collect();
        let alert = alert.await;
        for h in handles {
            if let Ok((pi, qi, r)) = h.await {
                results[pi][qi] = Some(r);
            }
        }
        let mut gates: Vec<GateResult> = Vec::new();
        for (pi, phase) in self.baseline.phases.iter().enumerate() {
            let mut probes: Vec<ProbeResult> = results[pi].drain(..).flatten().collect();
            if let Some((p, r)) = &alert {
                if p == &phase.name {
                    probes.push(r.clone());
                }
            }
            let own_blocked = probes.iter().any(|p| p.required && !p.ok);
            let warned = probes.iter().any(|p| !p.required && !p.ok);
            let blocked_by = phase.depends_on.iter().find(|d| gates.iter().any(|g| &g.name == *d && g.status == Status::Blocked)).cloned();
            let status = if own_blocked || blocked_by.is_some() {
                Status::Blocked
            } else if warned {
                Status::Warn
            } else {
                Status::Pass
            };
            gates.push(GateResult { name: phase.name.clone(), status, probes, blocked_by: if own_blocked { None } else { blocked_by } });
        }
        let count = |s: Status| gates.iter().filter(|g| g.status == s).count();
        let (pass, warn, blocked) = (count(Status::Pass), count(Status::Warn), count(Status::Blocked));
        let result = if blocked > 0 {
            "BLOCKED"
        } else if warn > 0 || pass == 0 {
            "DEGRADED"
        } else {
            "GREEN"
        };
        let first_blocked = gates.iter().find(|g| g.status == Status::Blocked && g.blocked_by.is_none()).map(|g| g.name.clone());
        Report { gates, pass, warn, blocked, result: result.into(), first_blocked, at: chrono::Utc::now().timestamp(), seconds: started.elapsed().as_secs_f64() }
    }

    /// Renders every template of the baseline for its host without contacting
    /// any host: the errors an operator should fix before relying on it.
    pub fn lint(&self) -> Vec<String> {
        let mut errors = Vec::new();
        let t = &self.sources.templates;
        for phase in &self.baseline.phases {
            for p in &phase.probes {
                if let Some(h) = &p.host {
                    if !self.sources.inventory().hosts.contains_key(h) {
                        errors.push(format!("{} / {}: host {h} is not in the inventory", phase.name, p.name));
                        continue;
                    }
                }
                let ctx = self.context(p.host.as_deref());
                if let Err(e) = t.render_value(&Json::Object(p.args.clone()), &ctx, &p.span) {
                    errors.push(format!("{} / {}: {e}", phase.name, p.name));
                }
                for extra in [&p.suggest, &p.suggest_if].into_iter().flatten() {
                    if let Err(e) = t.render_str(extra, &ctx, &p.span) {
                        errors.push(format!("{} / {}: {e}", phase.name, p.name));
                    }
                }
            }
        }
        if let Some((_, url, host)) = &self.baseline.alert_test {
            if let Err(e) = t.render_str(url, &self.context(host.as_deref()), &crate::error::Span::file(&self.baseline.path)) {
                errors.push(format!("alert_test: {e}"));
            }
        }
        for d in &self.baseline.drift {
            if !self.sources.inventory().hosts.contains_key(&d.host) {
                errors.push(format!("drift {}: host {} is not in the inventory", d.name, d.host));
                continue;
            }
            let ctx = self.context(Some(&d.host));
            for p in d.live.iter().chain(d.equal.iter()) {
                if let Err(e) = t.render_str(p, &ctx, &crate::error::Span::file(&self.baseline.path)) {
                    errors.push(format!("drift {}: {e}", d.name));
                }
            }
        }
        errors
    }

    /// Closes the connections.
    pub async fn close(&self) {
        let conns = std::mem::take(&mut *self.conns.lock().await);
        for (_, slot) in conns {
            if let Some(Ok(c)) = slot.lock().await.take() {
                if let Ok(c) = Arc::try_unwrap(c) {
                    c.close().await;
                }
            }
        }
    }
}

/// The SOP's Alertmanager v4 test payload (section 8), timestamped now.
pub fn alert_payload() -> String {
    json!({
        "receiver": "cold-start-test", "status": "firing",
        "alerts": [{"status": "firing", "labels": {"alertname": "ColdStartE2ETest", "severity": "info"},
                    "annotations": {"summary": "Cold start E2E test, ignore"},
                    "startsAt": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true), "endsAt": "0001-01-01T00:00:00Z", "generatorURL": ""}],
        "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {}, "externalURL": "", "version": "4", "groupKey": "cold-start-test"
    })
    .to_string()
}

/// The report as an operator reads it; `previous` marks what changed since the last attempt.
pub fn render(r: &Report, previous: Option<&Report>) -> String {
    use console::style;
    let mut out = String::new();
    for g in &r.gates {
        let before = previous.and_then(|p| p.gates.iter().find(|x| x.name == g.name)).map(|x| x.status);
        let changed = match before {
            Some(b) if b != g.status => format!("  (was {})", b.as_str()),
            _ => String::new(),
        };
        let st = match g.status {
            Status::Pass => style(g.status.as_str()).green(),
            Status::Warn => style(g.status.as_str()).yellow(),
            Status::Blocked => style(g.status.as_str()).red().bold(),
        };
        let ok = g.probes.iter().filter(|p| p.ok).count();
        let by = g.blocked_by.as_ref().map(|b| format!("  blocked by {b}")).unwrap_or_default();
        out.push_str(&format!("{:<32} {:<8} {ok}/{}{by}{changed}\n", g.name, st, g.probes.len()));
        for p in &g.probes {
            let on = p.host.as_ref().map(|h| format!(" ({h})")).unwrap_or_default();
            if p.ok {
                out.push_str(&format!("    {} {}{on}: {}\n", style("ok").green(), p.name, style(&p.evidence).dim()));
            } else {
                let mark = if p.required { style("FAIL").red() } else { style("warn").yellow() };
                out.push_str(&format!("    {mark} {}{on}: {}\n", p.name, p.evidence));
                if let Some(s) = &p.suggest {
                    out.push_str(&format!("         suggest: {}\n", style(s).bold()));
                }
            }
        }
    }
    if let Some(first) = &r.first_blocked {
        let suggestion = r.gates.iter().find(|g| &g.name == first).and_then(|g| g.probes.iter().find_map(|p| p.suggest.clone()));
        out.push_str(&format!(
            "\nfix first: {first}{}\n",
            suggestion.map(|s| format!(": {s}")).unwrap_or_else(|| " (its failed probes are listed above)".into())
        ));
    }
    out.push_str(&format!("PASS={} WARN={} BLOCKED={} Result: {}   ({:.1}s)\n", r.pass, r.warn, r.blocked, r.result, r.seconds));
    out
}
