//! Saved plans between `play` and `apply`: what a `--save-plan` dry-run writes (the plan, its
//! inputs, each host's fingerprint and connection), and what `recover apply` hands the run. A
//! room below both commands, so neither imports the other.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::Global;
use crate::executor::{exit, vars, VarSources};
use crate::inventory::Inventory;
use crate::plan::{self, Invocation, Mode, PlanFile, Source};
use crate::report::{Event, Reporter};
use crate::template::Templates;
use crate::transport::Connection;

/// What `recover apply` hands the run: the plan, who approved it, which hosts still fit it.
#[derive(Debug)]
pub struct ApplyCtx {
    pub pf: Arc<PlanFile>,
    pub file: PathBuf,
    /// "plan 1a2b3c4d5e6f approved by alice, bob": how each step was decided.
    pub approval: String,
    pub approvers: Vec<String>,
    pub fresh: Vec<String>,
    pub stale: Vec<(String, Vec<String>)>,
}

/// The files a plan's playbook depends on: the playbook, the roles, vars folders and
/// templates beside it and in the project, and `-e @FILE` files.
pub(super) fn playbook_source(path: &Path, root: &Path, extra: &[String]) -> Source {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
    let mut files = vec![path.to_path_buf()];
    for base in [root.to_path_buf(), dir] {
        for sub in ["roles", "group_vars", "host_vars", "templates", "files", "tasks", "vars"] {
            let p = base.join(sub);
            if p.exists() && !files.contains(&p) {
                files.push(p);
            }
        }
    }
    files.extend(extra.iter().filter_map(|e| e.strip_prefix('@')).map(PathBuf::from));
    plan::source_of(&files)
}

pub(super) fn absolute(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| std::env::current_dir().map(|d| d.join(p)).unwrap_or_else(|_| p.to_path_buf()))
}

/// Opens each host's connection and reads its fingerprint, hosts in parallel.
pub(super) async fn fingerprints(inventory: &Arc<Inventory>, extra: crate::template::Vars, hosts: &BTreeMap<String, Vec<plan::StepEntry>>, max_bytes: u64) -> BTreeMap<String, Result<plan::Fingerprint, String>> {
    let sources = VarSources::new(inventory.clone(), Templates::new(), extra, String::new(), false, String::new());
    let mut tasks = Vec::new();
    for (host, steps) in hosts {
        let (sources, host, steps) = (sources.clone(), host.clone(), steps.clone());
        tasks.push(tokio::spawn(async move {
            let res = async {
                let ctx = sources.inventory_context(&host);
                let target = vars::target(&ctx, &host)?;
                let conn = Connection::open(&target).await.map_err(|e| e.to_string())?;
                let fp = plan::read_fingerprint(&conn, &steps, max_bytes).await;
                conn.close().await;
                fp
            }
            .await;
            (host, res)
        }));
    }
    let mut out = BTreeMap::new();
    for t in tasks {
        if let Ok((h, r)) = t.await {
            out.insert(h, r);
        }
    }
    out
}

/// Each host's connection as the plan records it (see [`plan::connection_of`]).
pub fn connections<'a>(inventory: &Arc<Inventory>, extra: crate::template::Vars, hosts: impl Iterator<Item = &'a String>) -> Result<BTreeMap<String, serde_json::Value>, String> {
    let sources = VarSources::new(inventory.clone(), Templates::new(), extra, String::new(), false, String::new());
    let mut out = BTreeMap::new();
    for h in hosts {
        let ctx = sources.inventory_context(h);
        let t = vars::target(&ctx, h).map_err(|e| format!("host {h}: {e}"))?;
        out.insert(h.clone(), plan::connection_of(&t));
    }
    Ok(out)
}

/// What `play --save-plan` hands over once the dry-run is done.
pub struct SaveInput<'a> {
    pub g: &'a Global,
    /// The dry-run's `--tags` and `--skip-tags`.
    pub tags: &'a [String],
    pub skip_tags: &'a [String],
    pub file: &'a Path,
    pub mode: &'a Arc<Mode>,
    pub path: &'a Path,
    pub root: &'a Path,
    pub inventory: &'a Arc<Inventory>,
    pub baseline: Option<&'a crate::baseline::Baseline>,
    pub run_id: &'a str,
    pub operator: &'a str,
    pub timestamp: String,
}

/// Writes the plan of a finished dry-run (`--save-plan`); returns the exit code.
pub async fn save(s: SaveInput<'_>, code: i32, reporter: &Reporter) -> i32 {
    if code != exit::OK {
        eprintln!("error: the dry-run ended with exit {code}: no plan was saved to {} (a plan is made only from a dry-run that finished cleanly)", s.file.display());
        return code;
    }
    let Mode::Record(m) = &**s.mode else { return code };
    let steps = m.lock().map(|m| m.clone()).unwrap_or_default();
    let extra = match super::extra_vars(s.g) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::BAD_INPUT;
        }
    };
    let max_bytes = plan::hash_max_bytes();
    let mut hosts = BTreeMap::new();
    for (host, fp) in fingerprints(s.inventory, extra, &steps, max_bytes).await {
        match fp {
            Ok(fp) => {
                hosts.insert(host.clone(), plan::HostPlan { steps: steps.get(&host).cloned().unwrap_or_default(), fingerprint: fp });
            }
            Err(e) => {
                eprintln!("error: host {host}: cannot read the state the plan is made from: {e}; no plan was saved");
                return exit::UNREACHABLE;
            }
        }
    }
    // A plan file never holds a secret: one given on the command line cannot be re-derived
    // at apply, so it is refused here (a vault file, or `-e @FILE`, is read again at apply).
    for e in s.g.extra_vars.iter().filter(|e| !e.starts_with('@')) {
        let one = Global { extra_vars: vec![e.clone()], ..s.g.clone() };
        let secret = super::extra_vars(&one).map(|vars| vars.iter().any(|(k, v)| crate::secrets::is_secret_name(k) || v.as_str().is_some_and(crate::secrets::holds))).unwrap_or(false);
        if secret {
            eprintln!("error: an -e value is a secret (its name says so, or it holds one); a plan file never stores secrets: give it from a vault-encrypted file (-e @vars.yml with --vault-password-file) or the inventory; no plan was saved");
            return exit::BAD_INPUT;
        }
    }
    let extra_vars: Vec<String> = s.g.extra_vars.iter().map(|e| match e.strip_prefix('@') {
        Some(f) => format!("@{}", absolute(Path::new(f)).display()),
        None => e.clone(),
    }).collect();
    let now = chrono::Utc::now();
    let playbook = absolute(s.path);
    let connections = match connections(s.inventory, super::extra_vars(s.g).unwrap_or_default(), hosts.keys()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}; no plan was saved");
            return exit::BAD_INPUT;
        }
    };
    let p = plan::Plan {
        recover_version: env!("CARGO_PKG_VERSION").to_string(),
        created: now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        created_unix: now.timestamp(),
        author: s.operator.to_string(),
        run_id: s.run_id.to_string(),
        timestamp: s.timestamp,
        playbook: playbook_source(&playbook, s.root, &extra_vars),
        inventory: plan::source_of(&s.inventory.sources),
        baseline: s.baseline.map(|b| plan::source_of(&b.files)),
        invocation: Invocation {
            cwd: std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_default(),
            playbook: playbook.display().to_string(),
            inventory: s.inventory.sources.iter().map(|p| absolute(p).display().to_string()).collect(),
            extra_vars,
            limit: s.g.limit.clone(),
            host: s.g.host.clone(),
            tags: s.tags.to_vec(),
            skip_tags: s.skip_tags.to_vec(),
            forks: s.g.forks,
            vault_password_file: s.g.vault_password_file.iter().map(|f| absolute(Path::new(f)).display().to_string()).collect(),
            vault_id: s.g.vault_id.clone(),
        },
        inputs: crate::inputs::digests(),
        connections,
        hosts,
        events: reporter.captured(),
    };
    let pf = PlanFile::new(p);
    if let Err(e) = pf.write(s.file) {
        eprintln!("error: {e}");
        return exit::BAD_INPUT;
    }
    let changing: Vec<String> = pf.plan.hosts.iter().filter(|(_, h)| h.changes().next().is_some()).map(|(n, _)| n.clone()).collect();
    // Where the board finds the plans waiting for approval (a dry-run keeps no run log).
    if let Err(e) = crate::plan::approval::record_saved(&pf.digest, &absolute(s.file).display().to_string()) {
        eprintln!("warning: {e}; the board will not list this plan");
    }
    reporter.emit(Event::PlanSaved { file: s.file.display().to_string(), plan_digest: pf.digest.clone(), hosts: changing, changes: pf.plan.change_count() });
    exit::OK
}

