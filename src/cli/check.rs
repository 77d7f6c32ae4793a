//! `recover check`, `recover gate`, `recover drift`: the read-only side of the SOP.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use super::{Global, Output};
use crate::baseline::Baseline;
use crate::executor::{vars, VarSources};
use crate::gates::{self, textfile, Checker};
use crate::template::Templates;
use crate::transport::Connection;

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Repeat until GREEN or --max-attempts run out, showing what changed
    #[arg(long)]
    pub watch: bool,
    /// Seconds between attempts with --watch
    #[arg(long, default_value_t = 60)]
    pub interval: u64,
    /// Attempts with --watch
    #[arg(long, default_value_t = 30)]
    pub max_attempts: u32,
    /// POST the SOP's Alertmanager test payload: the alert-chain gate passes only on a 2xx
    #[arg(long)]
    pub send_alert_test: bool,
    /// Never post anything (for cron); with --textfile, write the monitor's metrics
    #[arg(long, conflicts_with = "send_alert_test")]
    pub monitor_read_only: bool,
    /// Prometheus textfile to write (atomically)
    #[arg(long, value_name = "PATH")]
    pub textfile: Option<PathBuf>,
    /// The baseline (default: baseline-<inventory>.yml or baseline.yml beside the inventory)
    #[arg(long, value_name = "PATH")]
    pub baseline: Option<PathBuf>,
    /// Check the baseline against the inventory (every template rendered for its host); contacts no host
    #[arg(long)]
    pub lint: bool,
    /// How many probes at once (1 runs them one after another, as a shell script would)
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub parallel: u32,
}

#[derive(Args, Debug)]
pub struct BaselineArg {
    /// The baseline (default: baseline-<inventory>.yml or baseline.yml beside the inventory)
    #[arg(long, value_name = "PATH")]
    pub baseline: Option<PathBuf>,
}

pub(super) fn setup(g: &Global, baseline: &Option<PathBuf>) -> anyhow::Result<(Baseline, Arc<VarSources>)> {
    let root = super::project_root();
    let inventory = Arc::new(super::load_inventory(g)?);
    let path = match baseline {
        Some(p) => p.clone(),
        None => inventory.sources.first().and_then(|inv| crate::baseline::locate(&root, inv)).ok_or_else(|| anyhow::anyhow!("no baseline beside the inventory: pass --baseline PATH"))?,
    };
    let b = Baseline::load(&path)?;
    let sources = VarSources::new(inventory, Templates::new(), super::extra_vars(g)?, root.display().to_string(), true, String::new());
    Ok((b, sources))
}

pub async fn check(g: &Global, a: &CheckArgs) -> anyhow::Result<i32> {
    let (baseline, sources) = match setup(g, &a.baseline) {
        Ok(x) => x,
        Err(e) => {
            if let Some(tf) = &a.textfile {
                let now = chrono::Utc::now().timestamp();
                textfile::write(tf, &textfile::render(None, now, textfile::previous_green(tf)))?;
            }
            return Err(e);
        }
    };
    if baseline.phases.is_empty() {
        anyhow::bail!("{}: the baseline has no phases", baseline.path.display());
    }
    let mut checker = Checker::new(baseline, sources, a.send_alert_test && !a.monitor_read_only);
    checker.parallel = a.parallel as usize;
    let checker = Arc::new(checker);
    if a.lint {
        let errors = checker.lint();
        let probes: usize = checker.baseline.phases.iter().map(|p| p.probes.len()).sum();
        for e in &errors {
            outln!("{} {e}", console::style("error:").red())?;
        }
        outln!("{}: {} phases, {probes} probes, {} drift specs, {} gate conditions: {}", checker.baseline.path.display(), checker.baseline.phases.len(), checker.baseline.drift.len(), checker.baseline.automation_gate.len(), if errors.is_empty() { "ok".to_string() } else { format!("{} errors", errors.len()) })?;
        return Ok(if errors.is_empty() { 0 } else { 1 });
    }
    let attempts = if a.watch { a.max_attempts.max(1) } else { 1 };
    let mut previous: Option<gates::Report> = None;
    let mut code = 2;
    for attempt in 1..=attempts {
        let report = checker.pass().await;
        code = report.exit_code();
        if g.output == Output::Json {
            outln!("{}", serde_json::to_string(&serde_json::json!({"attempt": attempt, "report": &report}))?)?;
        } else {
            if a.watch {
                outln!("\n{}", console::style(format!("attempt {attempt}/{attempts} at {}", chrono::Local::now().format("%H:%M:%S"))).bold())?;
            }
            out!("{}", gates::render(&report, previous.as_ref()))?;
        }
        if let Some(tf) = &a.textfile {
            textfile::write(tf, &textfile::render(Some(&report), report.at, textfile::previous_green(tf)))?;
        }
        let green = code == 0;
        previous = Some(report);
        if green || attempt == attempts {
            break;
        }
        tokio::time::sleep(Duration::from_secs(a.interval)).await;
    }
    checker.close().await;
    Ok(code)
}

/// `recover gate`: the automation gate of SOP 12.2, recorded for `--automation` runs.
pub async fn gate(g: &Global, a: &BaselineArg) -> anyhow::Result<i32> {
    let (baseline, sources) = setup(g, &a.baseline)?;
    if baseline.automation_gate.is_empty() {
        anyhow::bail!("{}: the baseline has no automation_gate conditions", baseline.path.display());
    }
    let conditions = baseline.automation_gate.clone();
    let baseline_path_digest = baseline.digest();
    let baseline_name = baseline.path.display().to_string();
    let inventory_files = sources.inventory().sources.clone();
    let checker = Arc::new(Checker::new(baseline, sources, false));
    let report = checker.pass().await;
    checker.close().await;
    let mut unmet = Vec::new();
    for c in &conditions {
        let gate = report.gates.iter().find(|x| x.name == c.phase);
        match gate {
            Some(x) if x.status == gates::Status::Pass => outln!("  {} {}", console::style("met  ").green(), c.name)?,
            Some(x) => {
                let why = x.blocked_by.clone().map(|b| format!("blocked by {b}")).unwrap_or_else(|| x.probes.iter().filter(|p| !p.ok).map(|p| format!("{}: {}", p.name, p.evidence)).collect::<Vec<_>>().join("; "));
                outln!("  {} {} ({} is {}: {why})", console::style("UNMET").red(), c.name, c.phase, x.status.as_str())?;
                unmet.push(format!("{}: {} is {}", c.name, c.phase, x.status.as_str()));
            }
            None => unmet.push(format!("{}: no phase {}", c.name, c.phase)),
        }
    }
    let green = unmet.is_empty();
    let state = crate::safety::freeze::GateState {
        green,
        at: chrono::Utc::now().to_rfc3339(),
        unmet: unmet.clone(),
        baseline_sha256: Some(baseline_path_digest.clone()),
        inventory_sha256: Some(crate::safety::freeze::files_digest(&inventory_files)),
        baseline: Some(baseline_name.clone()),
    };
    if g.dry_run {
        outln!("(--dry-run: the result was not recorded)")?;
    } else {
        crate::safety::freeze::record_gate(&state).map_err(|e| anyhow::anyhow!("cannot record the gate in {}: {e}", crate::safety::freeze::shared_dir().display()))?;
    }
    outln!("automation gate: {}", if green { console::style("GREEN: limited execution allowed").green() } else { console::style("NOT green: diagnose and notify only").red() })?;
    Ok(if green { 0 } else { 1 })
}

/// `recover drift`: live files against their templates, and files that must be equal.
pub async fn drift(g: &Global, a: &BaselineArg) -> anyhow::Result<i32> {
    let (baseline, sources) = match setup(g, &a.baseline) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(2);
        }
    };
    if baseline.drift.is_empty() {
        eprintln!("error: {}: the baseline has no drift specs", baseline.path.display());
        return Ok(2);
    }
    let root = crate::assets::root_for(&baseline.path);
    let mut drifted = 0;
    let mut errors = 0;
    let mut json = Vec::new();
    for spec in &baseline.drift {
        let res = drift_one(&sources, &root, spec).await;
        match res {
            Ok(None) => {
                if g.output == Output::Text {
                    outln!("{} {}: no drift", console::style("ok   ").green(), spec.name)?;
                }
                json.push(serde_json::json!({"name": spec.name, "host": spec.host, "drift": false}));
            }
            Ok(Some(diff)) => {
                drifted += 1;
                if g.output == Output::Text {
                    outln!("{} {}:", console::style("DRIFT").red(), spec.name)?;
                    out!("{diff}")?;
                }
                json.push(serde_json::json!({"name": spec.name, "host": spec.host, "drift": true, "diff": diff}));
            }
            Err(e) => {
                errors += 1;
                if g.output == Output::Text {
                    outln!("{} {}: {e}", console::style("ERROR").red(), spec.name)?;
                }
                json.push(serde_json::json!({"name": spec.name, "host": spec.host, "error": e}));
            }
        }
    }
    if g.output == Output::Json {
        outln!("{}", serde_json::to_string(&json)?)?;
    }
    Ok(if errors > 0 { 2 } else if drifted > 0 { 1 } else { 0 })
}

async fn drift_one(sources: &Arc<VarSources>, root: &std::path::Path, spec: &crate::baseline::DriftSpec) -> Result<Option<String>, String> {
    let host = &spec.host;
    if !sources.inventory().hosts.contains_key(host) {
        return Err(format!("host {host} is not in the inventory"));
    }
    let mut vars = crate::template::Vars::new();
    if let Some(d) = &spec.defaults {
        let node = crate::yaml::load_file(&root.join(d)).map_err(|e| e.to_string())?;
        if let serde_json::Value::Object(m) = node.to_json() {
            vars.extend(m);
        }
    }
    let ctx = sources.context(host, &crate::executor::vars::PlayHosts::new(std::slice::from_ref(host)), &vars, &Default::default(), &[]);
    let target = vars::target(&ctx, host)?;
    let opened = Connection::open(&target).await.map_err(|e| format!("host {host}: {e}"))?;
    let render = |p: &str| sources.templates.render_str(p, &ctx, &crate::error::Span::default()).map_err(|e| e.to_string());
    let conn = &opened;
    let result = async {
        let (name_a, a, name_b, b) = if let (Some(t), Some(live)) = (&spec.template, &spec.live) {
            let tpath = root.join(render(t)?);
            let text = std::fs::read_to_string(&tpath).map_err(|e| format!("{}: {e}", tpath.display()))?;
            let want = sources.templates.render_file(&text, &ctx, &crate::error::Span { line: 1, col: 1, ..crate::error::Span::file(&tpath) }).map_err(|e| e.to_string())?;
            let live = render(live)?;
            let have = conn.get(&live, None).await.map_err(|e| e.to_string())?.ok_or_else(|| format!("{host}:{live} does not exist"))?;
            (format!("live: {host}:{live}"), String::from_utf8_lossy(&have).into_owned(), format!("template: {}", tpath.display()), want)
        } else {
            let (pa, pb) = (render(&spec.equal[0])?, render(&spec.equal[1])?);
            let a = conn.get(&pa, None).await.map_err(|e| e.to_string())?.ok_or_else(|| format!("{host}:{pa} does not exist"))?;
            let b = conn.get(&pb, None).await.map_err(|e| e.to_string())?.ok_or_else(|| format!("{host}:{pb} does not exist"))?;
            (format!("{host}:{pa}"), String::from_utf8_lossy(&a).into_owned(), format!("{host}:{pb}"), String::from_utf8_lossy(&b).into_owned())
        };
        Ok::<_, String>(if a == b { None } else { Some(similar::TextDiff::from_lines(&a, &b).unified_diff().context_radius(3).header(&name_a, &name_b).to_string()) })
    }
    .await;
    opened.close().await;
    result
}
