//! The fleet baseline (`inventory/baseline.yml`): the SOP's machine-readable
//! source of truth. This part holds the service tiers of SOP section 10: which
//! services and paths are `BLOCK`, `CRITICAL_HITL`, `STANDARD_HITL`, `AUTO`.
//! A step's tier is the highest of what its module, its task and this say.

use std::path::{Path, PathBuf};

use minijinja::Value;

use crate::error::{SResult, SourceError};
use crate::safety::Tier;
use crate::template::Templates;
use crate::yaml::{self, Node};

/// Services and paths of one tier.
#[derive(Clone, Debug, Default)]
pub struct TierRule {
    pub services: Vec<String>,
    /// Path templates (rendered with the host's variables); a path under one is in the tier.
    pub paths: Vec<(String, crate::error::Span)>,
    /// Modules (full names or globs: `community.postgresql.*`) whose changing steps are in the tier.
    pub modules: Vec<String>,
}

/// One probe of a phase, as written (its strings are templates).
#[derive(Clone, Debug)]
pub struct ProbeSpec {
    pub name: String,
    pub kind: String,
    /// Inventory host it runs on (ssh, command, metric_age, systemd_props, load) or whose variables it uses.
    pub host: Option<String>,
    /// Failure blocks the phase (else it only warns).
    pub required: bool,
    pub timeout: u64,
    /// What to run when it fails, e.g. `recover play pg-wal --host 188 --dry-run`.
    pub suggest: Option<String>,
    /// A command on the same host; the suggestion is shown only when it exits 0.
    pub suggest_if: Option<String>,
    /// Every other key (address, url, status, command, file, metric, max_age, unit, properties, ...).
    pub args: serde_json::Map<String, serde_json::Value>,
    pub span: crate::error::Span,
}

/// A cold-start phase gate (SOP 1.2, 13.4).
#[derive(Clone, Debug)]
pub struct Phase {
    pub name: String,
    pub covers: Option<String>,
    pub depends_on: Vec<String>,
    pub probes: Vec<ProbeSpec>,
}

/// A live file compared with its template, or two files that must be equal.
#[derive(Clone, Debug)]
pub struct DriftSpec {
    pub name: String,
    pub host: String,
    pub template: Option<String>,
    pub live: Option<String>,
    /// A variables file (a role's defaults) under the host's variables.
    pub defaults: Option<String>,
    pub equal: Vec<String>,
}

/// One condition of the automation gate (SOP 12.2): a phase that must pass.
#[derive(Clone, Debug)]
pub struct GateCondition {
    pub name: String,
    pub phase: String,
}

/// The loaded baseline.
#[derive(Clone, Debug, Default)]
pub struct Baseline {
    pub path: PathBuf,
    /// This file and every file it `extends`, for the baseline's digest.
    pub files: Vec<PathBuf>,
    pub tiers: Vec<(Tier, TierRule)>,
    /// The tier of a destructive step nothing else classifies.
    pub default_tier: Option<Tier>,
    pub phases: Vec<Phase>,
    /// The phase whose alert-chain check `--send-alert-test` proves, and the webhook URL (a template).
    pub alert_test: Option<(String, String, Option<String>)>,
    pub drift: Vec<DriftSpec>,
    pub automation_gate: Vec<GateCondition>,
}

impl Baseline {
    /// sha256 of the baseline's files: a recorded gate counts only for the baseline that produced it.
    pub fn digest(&self) -> String {
        crate::safety::freeze::files_digest(&self.files)
    }

    pub fn load(path: &Path) -> SResult<Baseline> {
        Self::load_depth(path, 0)
    }

    fn load_depth(path: &Path, depth: usize) -> SResult<Baseline> {
        let root = yaml::load_file(path)?;
        let mut b = Baseline { path: path.to_path_buf(), files: vec![path.to_path_buf()], ..Default::default() };
        if let Some(parent) = root.get("extends") {
            let rel = parent.as_str().ok_or_else(|| parent.error("`extends` takes a baseline file"))?;
            if depth > 5 {
                return Err(parent.error("`extends` nested too deep"));
            }
            let base = Self::load_depth(&path.parent().unwrap_or(Path::new(".")).join(rel), depth + 1)?;
            b.tiers = base.tiers;
            b.default_tier = base.default_tier;
            b.files.extend(base.files);
        }
        for key in root.as_map().unwrap_or(&[]).iter().map(|(k, _)| k) {
            let name = key.scalar_string().unwrap_or_default();
            if !["extends", "tiers", "phases", "alert_test", "drift", "automation_gate", "description"].contains(&name.as_str()) {
                return Err(key.error(format!("unknown baseline key '{name}'")).help("a baseline has tiers, phases, alert_test, drift, automation_gate, extends"));
            }
        }
        if root.get("tiers").is_some() {
            b.tiers.clear();
        }
        b.phases = phases(root.get("phases"))?;
        if let Some(a) = root.get("alert_test") {
            let phase = a.get("phase").and_then(Node::scalar_string).ok_or_else(|| a.error("alert_test needs `phase`"))?;
            let url = a.get("url").and_then(Node::scalar_string).ok_or_else(|| a.error("alert_test needs `url`"))?;
            let host = a.get("host").and_then(Node::scalar_string);
            if !b.phases.iter().any(|p| p.name == phase) {
                return Err(a.error(format!("alert_test names phase '{phase}', which the baseline does not have")));
            }
            b.alert_test = Some((phase, url, host));
        }
        b.drift = drift(root.get("drift"))?;
        if let Some(g) = root.get("automation_gate") {
            for c in g.as_seq().ok_or_else(|| g.error("`automation_gate` is a list of conditions"))? {
                let name = c.get("name").and_then(Node::scalar_string).ok_or_else(|| c.error("a gate condition needs `name`"))?;
                let phase = c.get("phase").and_then(Node::scalar_string).ok_or_else(|| c.error("a gate condition needs `phase` (a phase that must pass)"))?;
                if !b.phases.iter().any(|p| p.name == phase) {
                    return Err(c.error(format!("gate condition '{name}' names phase '{phase}', which the baseline does not have")));
                }
                b.automation_gate.push(GateCondition { name, phase });
            }
        }
        if let Some(tiers) = root.get("tiers") {
            let entries = tiers.as_map().ok_or_else(|| tiers.error("`tiers` must map tier names to services and paths"))?;
            for (k, v) in entries {
                let name = k.scalar_string().unwrap_or_default();
                if name == "default" {
                    let t = v.scalar_string().unwrap_or_default();
                    b.default_tier = Some(Tier::parse(&t).ok_or_else(|| v.error(format!("unknown tier '{t}'")))?);
                    continue;
                }
                let tier = Tier::parse(&name).ok_or_else(|| k.error(format!("unknown tier '{name}'")).help("tiers: AUTO, STANDARD_HITL, CRITICAL_HITL, BLOCK, and `default`"))?;
                b.tiers.push((tier, rule(v)?));
            }
        }
        Ok(b)
    }

    /// The baseline tier of a step touching `paths` and `services` on a host with context `ctx`.
    pub fn tier_for(&self, paths: &[String], services: &[String], module: Option<&str>, ctx: &Value, templates: &Templates) -> Result<Option<Tier>, SourceError> {
        let mut best: Option<Tier> = None;
        for (tier, rule) in &self.tiers {
            let hit_service = services.iter().any(|s| rule.services.iter().any(|r| r == s)) || module.is_some_and(|m| rule.names_module(m));
            let mut hit_path = false;
            for (tmpl, span) in &rule.paths {
                let root = match templates.render_str(tmpl, ctx, span) {
                    Ok(r) => r,
                    Err(_) => continue, // a tier path this host has no variables for does not apply to it
                };
                let root = root.trim_end_matches('/');
                if !root.is_empty() && paths.iter().any(|p| p == root || p.starts_with(&format!("{root}/"))) {
                    hit_path = true;
                }
            }
            if hit_service || hit_path {
                best = best.max(Some(*tier));
            }
        }
        Ok(best)
    }
}

fn phases(node: Option<&Node>) -> SResult<Vec<Phase>> {
    let Some(node) = node else { return Ok(Vec::new()) };
    let items = node.as_seq().ok_or_else(|| node.error("`phases` is a list of phases, in startup order"))?;
    let mut out: Vec<Phase> = Vec::new();
    for p in items {
        let name = p.get("name").and_then(Node::scalar_string).ok_or_else(|| p.error("a phase needs `name`"))?;
        let depends_on: Vec<String> = match p.get("depends_on") {
            None => Vec::new(),
            Some(d) => d.as_seq().ok_or_else(|| d.error("`depends_on` is a list of phase names"))?.iter().filter_map(Node::scalar_string).collect(),
        };
        for d in &depends_on {
            if !out.iter().any(|x| &x.name == d) {
                return Err(p.error(format!("phase '{name}' depends on '{d}', which is not an earlier phase")));
            }
        }
        let mut probes = Vec::new();
        if let Some(list) = p.get("probes") {
            for q in list.as_seq().ok_or_else(|| list.error("`probes` is a list"))? {
                probes.push(probe(q)?);
            }
        }
        out.push(Phase { name, covers: p.get("covers").and_then(Node::scalar_string), depends_on, probes });
    }
    Ok(out)
}

const PROBE_KINDS: &[&str] = &["ssh", "tcp", "http", "command", "metric_age", "systemd_props", "load", "docker", "storage_log"];

fn probe(q: &Node) -> SResult<ProbeSpec> {
    let name = q.get("name").and_then(Node::scalar_string).ok_or_else(|| q.error("a probe needs `name`"))?;
    let kind_node = q.get("type").ok_or_else(|| q.error(format!("probe '{name}' needs `type` ({})", PROBE_KINDS.join(", "))))?;
    let kind = kind_node.scalar_string().unwrap_or_default();
    if !PROBE_KINDS.contains(&kind.as_str()) {
        return Err(kind_node.error(format!("unknown probe type '{kind}'")).help(format!("types: {}", PROBE_KINDS.join(", "))));
    }
    let needs = |k: &str| q.get(k).map(|_| ()).ok_or_else(|| q.error(format!("a {kind} probe needs `{k}`")));
    match kind.as_str() {
        "tcp" => needs("address")?,
        "http" => needs("url")?,
        "command" => needs("command")?,
        "metric_age" => needs("file").and(needs("max_age"))?,
        "systemd_props" => needs("unit").and(needs("properties"))?,
        "load" => needs("max_per_core")?,
        "docker" if q.get("containers").is_none() && q.get("project").is_none() => {
            return Err(q.error("a docker probe needs `containers` (names) or `project` (a Compose project's name)"));
        }
        "storage_log" if ["container", "unit", "file", "command"].iter().filter(|k| q.get(k).is_some()).count() != 1 => {
            return Err(q.error("a storage_log probe reads one log: give exactly one of `container` (docker logs), `unit` (journalctl), `file` or `command`"));
        }
        _ => {}
    }
    let host = q.get("host").and_then(Node::scalar_string);
    if host.is_none() && !matches!(kind.as_str(), "tcp" | "http") {
        return Err(q.error(format!("a {kind} probe runs on a host: give `host`")));
    }
    let mut args = match q.to_json() {
        serde_json::Value::Object(m) => m,
        _ => serde_json::Map::new(),
    };
    for k in ["name", "type", "host", "required", "timeout", "suggest", "suggest_if"] {
        args.remove(k);
    }
    let timeout = match q.get("timeout") {
        Some(t) => t.scalar_string().and_then(|s| s.parse().ok()).ok_or_else(|| t.error("`timeout` is a number of seconds"))?,
        None => 5,
    };
    Ok(ProbeSpec {
        name,
        kind,
        host,
        required: !matches!(q.get("required").map(|r| &r.value), Some(yaml::Value::Bool(false))),
        timeout,
        suggest: q.get("suggest").and_then(Node::scalar_string),
        suggest_if: q.get("suggest_if").and_then(Node::scalar_string),
        args,
        span: q.span.clone(),
    })
}

fn drift(node: Option<&Node>) -> SResult<Vec<DriftSpec>> {
    let Some(node) = node else { return Ok(Vec::new()) };
    let mut out = Vec::new();
    for d in node.as_seq().ok_or_else(|| node.error("`drift` is a list"))? {
        let s = |k: &str| d.get(k).and_then(Node::scalar_string);
        let name = s("name").ok_or_else(|| d.error("a drift spec needs `name`"))?;
        let host = s("host").ok_or_else(|| d.error(format!("drift '{name}' needs `host`")))?;
        let equal: Vec<String> = d.get("equal").and_then(Node::as_seq).map(|v| v.iter().filter_map(Node::scalar_string).collect()).unwrap_or_default();
        let spec = DriftSpec { name: name.clone(), host, template: s("template"), live: s("live"), defaults: s("defaults"), equal };
        if !(spec.template.is_some() && spec.live.is_some() || spec.equal.len() == 2) {
            return Err(d.error(format!("drift '{name}' needs `template` and `live`, or `equal` with two paths")));
        }
        out.push(spec);
    }
    Ok(out)
}

impl TierRule {
    /// Whether the rule names `module` (its full name, `ansible.builtin.X` for a built-in one),
    /// by name or glob.
    pub fn names_module(&self, module: &str) -> bool {
        let full = crate::modules::fqcn(module).unwrap_or_else(|| module.to_string());
        self.modules.iter().any(|g| crate::modules::files::find::fnmatch(&full, g) || crate::modules::files::find::fnmatch(module, g))
    }
}

/// The tier a baseline gives a module by name, whatever it touches.
impl Baseline {
    pub fn module_tier(&self, module: &str) -> Option<Tier> {
        self.tiers.iter().filter(|(_, r)| r.names_module(module)).map(|(t, _)| *t).max()
    }
}

fn rule(v: &Node) -> SResult<TierRule> {
    let mut r = TierRule::default();
    if let Some(m) = v.get("modules") {
        match &m.value {
            yaml::Value::Seq(items) => r.modules = items.iter().filter_map(Node::scalar_string).collect(),
            _ => return Err(m.error("`modules` must be a list of module names or globs (`community.postgresql.*`)")),
        }
    }
    if let Some(s) = v.get("services") {
        match &s.value {
            yaml::Value::Seq(items) => r.services = items.iter().filter_map(Node::scalar_string).collect(),
            _ => return Err(s.error("`services` must be a list of service names")),
        }
    }
    if let Some(p) = v.get("paths") {
        match &p.value {
            yaml::Value::Seq(items) => {
                for i in items {
                    r.paths.push((i.scalar_string().ok_or_else(|| i.error("a path must be text"))?, i.span.clone()));
                }
            }
            _ => return Err(p.error("`paths` must be a list of paths")),
        }
    }
    Ok(r)
}

/// Where an inventory's baseline is: `baseline-<inventory name>.yml` beside it
/// (`baseline-lab.yml` for `lab.yml`), else `baseline.yml` beside it, else in the
/// `inventory/` folder of the search path (the built-in fleet baseline last; see `assets`).
pub fn locate(_project_root: &Path, inventory: &Path) -> Option<PathBuf> {
    crate::assets::find_baseline(inventory)
}
