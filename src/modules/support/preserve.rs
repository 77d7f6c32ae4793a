//! `preserve_move`: moves paths into a preserved folder instead of deleting
//! them (SOP 10.2, 10.3): each keeps its full path under `dest`, a
//! `manifest.json` records every file's sha256, and after the move every
//! sha256 is checked again. Destructive for the original locations, but the
//! move is itself the preservation, so no archive is needed.

use async_trait::async_trait;
use documented::Documented;
use serde::Deserialize;
use serde_json::{json, Value as Json};

use crate::modules::{de, req, typed, ArgSpec, Kind, Module, Outcome, Plan, StepCtx, StepError};
use crate::transport::{quote, Cmd};

/// `preserve_move`: moves paths into a preserved folder instead of deleting them (SOP 10.2, 10.3):
/// each keeps its full path under `dest`, a `manifest.json` records every file's sha256, checked
/// again after the move. The move is itself the preservation, so no archive is taken.
///
/// Returns: `preserved` (the folder), `moved` (each original and where it went), `manifest`.
///
/// Check mode: plans the moves and the manifest; moves nothing.
#[derive(Documented)]
pub struct PreserveMove;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(deserialize_with = "de::list_loose")]
    paths: Vec<String>,
    dest: String,
}

#[async_trait]
impl Module for PreserveMove {
    fn name(&self) -> &'static str {
        "preserve_move"
    }
    fn doc(&self) -> &'static str {
        Self::DOCS
    }
    fn spec(&self) -> &'static [ArgSpec] {
        const S: &[ArgSpec] = &[
            req("paths", Kind::List).doc("The paths to move aside (each keeps its full path under `dest`)."),
            req("dest", Kind::Str).doc("The preserved folder on the host."),
        ];
        S
    }
    async fn plan(&self, ctx: &StepCtx<'_>, args: &Json) -> Result<Plan, StepError> {
        let a: Args = typed("preserve_move", args)?;
        let mut present = Vec::new();
        for p in &a.paths {
            if !p.starts_with('/') {
                return Err(StepError::failed(format!("preserve_move: {p:?} is not an absolute path")));
            }
            if ctx.run(Cmd::argv(["test", "-e", p.as_str()])).await?.ok() {
                present.push(p.clone());
            }
        }
        let mut plan = Plan::ok();
        if present.is_empty() {
            return Ok(plan);
        }
        for p in &present {
            plan.changes.push(format!("move {p} to {}{p}", a.dest.trim_end_matches('/')));
        }
        plan.destructive = Some(crate::safety::Destructive {
            reason: format!("moves {} out of place", present.join(", ")),
            paths: present.clone(),
            preserves: Some(format!("moved (not deleted) into {} with a sha256 manifest", a.dest)),
            ..Default::default()
        });
        plan.result.insert("move".into(), json!({ "paths": present, "dest": a.dest }));
        Ok(plan)
    }
    async fn apply(&self, ctx: &StepCtx<'_>, plan: Plan) -> Result<Outcome, StepError> {
        let spec = plan.result.get("move").cloned().unwrap_or_default();
        let dest = spec["dest"].as_str().unwrap_or_default().trim_end_matches('/').to_string();
        let paths: Vec<String> = spec["paths"].as_array().map(|a| a.iter().filter_map(|p| p.as_str().map(str::to_string)).collect()).unwrap_or_default();
        let sums = |root: &str| format!("find {} -type f -exec sha256sum {{}} + | sort -k2", quote::quote(root));
        let mut manifest = Vec::new();
        for p in &paths {
            let before = ctx.run_ok(Cmd::shell(sums(p))).await?.stdout_str();
            let target = format!("{dest}{p}");
            let t = quote::quote(&target);
            ctx.run_ok(Cmd::shell(format!("mkdir -p \"$(dirname {t})\" && mv -- {} {t}", quote::quote(p)))).await?;
            let after = ctx.run_ok(Cmd::shell(sums(&target))).await?.stdout_str();
            let strip = |text: &str, root: &str| -> Vec<(String, String)> {
                text.lines().filter_map(|l| l.split_once("  ")).map(|(h, f)| (h.to_string(), f.strip_prefix(root).unwrap_or(f).to_string())).collect()
            };
            let (b, a) = (strip(&before, p), strip(&after, &target));
            if b != a {
                return Err(StepError::failed(format!("host {}: {p} moved to {target}, but its sha256s differ afterwards", ctx.host)));
            }
            for (h, f) in b {
                manifest.push(json!({"original": format!("{p}{f}"), "preserved": format!("{target}{f}"), "sha256": h}));
            }
        }
        // One manifest per preserved folder: earlier moves into it (a loop) are kept.
        let manifest_path = format!("{dest}/manifest.json");
        if let Some(old) = ctx.read(&manifest_path).await? {
            if let Ok(v) = serde_json::from_slice::<Json>(&old) {
                let mut all: Vec<Json> = v["moved"].as_array().cloned().unwrap_or_default();
                all.extend(manifest);
                manifest = all;
            }
        }
        let text = serde_json::to_string_pretty(&json!({ "moved": manifest, "at": chrono::Utc::now().to_rfc3339(), "host": ctx.host })).unwrap_or_default() + "\n";
        ctx.run_ok(Cmd::shell(format!("cat > {}", quote::quote(&format!("{dest}/manifest.json")))).stdin(text.into_bytes())).await?;
        let mut result = serde_json::Map::new();
        result.insert("moved".into(), json!(manifest));
        result.insert("manifest".into(), json!(format!("{dest}/manifest.json")));
        Ok(Outcome { changed: true, result })
    }
}
