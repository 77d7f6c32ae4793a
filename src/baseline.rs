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
}

/// The loaded baseline.
#[derive(Clone, Debug, Default)]
pub struct Baseline {
    pub path: PathBuf,
    pub tiers: Vec<(Tier, TierRule)>,
    /// The tier of a destructive step nothing else classifies.
    pub default_tier: Option<Tier>,
}

impl Baseline {
    pub fn load(path: &Path) -> SResult<Baseline> {
        let root = yaml::load_file(path)?;
        let mut b = Baseline { path: path.to_path_buf(), ..Default::default() };
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
    pub fn tier_for(&self, paths: &[String], services: &[String], ctx: &Value, templates: &Templates) -> Result<Option<Tier>, SourceError> {
        let mut best: Option<Tier> = None;
        for (tier, rule) in &self.tiers {
            let hit_service = services.iter().any(|s| rule.services.iter().any(|r| r == s));
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

fn rule(v: &Node) -> SResult<TierRule> {
    let mut r = TierRule::default();
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

/// Where the baseline is: `baseline:` in recover.yml, else `baseline.yml` beside the inventory.
pub fn locate(project_root: &Path, inventory: &Path) -> Option<PathBuf> {
    if let Ok(node) = yaml::load_file(&project_root.join("recover.yml")) {
        if let Some(p) = node.get("baseline").and_then(Node::as_str) {
            return Some(project_root.join(p));
        }
    }
    let dir = if inventory.is_dir() { inventory.to_path_buf() } else { inventory.parent()?.to_path_buf() };
    let p = dir.join("baseline.yml");
    p.is_file().then_some(p)
}
