//! `stat` and `slurp`: read-only; they run in dry-run too.

use async_trait::async_trait;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Value as Json};
use sha2::Digest;

use super::{de, opt, req, typed, ArgSpec, Kind, Module, Plan, StepCtx, StepError};
use crate::facts;

pub struct Stat;
pub struct Slurp;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatArgs {
    path: String,
    #[serde(default, deserialize_with = "de::bool_loose")]
    get_checksum: Option<bool>,
}

#[async_trait]
impl Module for Stat {
    fn name(&self) -> &'static str {
        "stat"
    }
    fn spec(&self) -> &'static [ArgSpec] {
        const S: &[ArgSpec] = &[req("path", Kind::Str), opt("get_checksum", Kind::Bool)];
        S
    }
    async fn plan(&self, ctx: &StepCtx<'_>, args: &Json) -> Result<Plan, StepError> {
        let a: StatArgs = typed("stat", args)?;
        let st = facts::parse_stat(&ctx.run(facts::stat_cmd(&a.path)).await?.stdout_str());
        let mut stat = match &st {
            Some(s) => s.to_json(&a.path),
            None => json!({"exists": false, "path": a.path}),
        };
        if a.get_checksum.unwrap_or(false) && st.as_ref().is_some_and(|s| s.kind == facts::FileKind::File) {
            if let Some(bytes) = ctx.read(&a.path).await? {
                stat["checksum"] = json!(format!("{:x}", sha2::Sha256::digest(&bytes)));
            }
        }
        Ok(Plan::done(json!({ "stat": stat })))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SlurpArgs {
    #[serde(alias = "path")]
    src: String,
}

#[async_trait]
impl Module for Slurp {
    fn name(&self) -> &'static str {
        "slurp"
    }
    fn spec(&self) -> &'static [ArgSpec] {
        const S: &[ArgSpec] = &[req("src", Kind::Str), opt("path", Kind::Str)];
        S
    }
    async fn plan(&self, ctx: &StepCtx<'_>, args: &Json) -> Result<Plan, StepError> {
        let a: SlurpArgs = typed("slurp", args)?;
        let bytes = ctx.read(&a.src).await?.ok_or_else(|| StepError::failed(format!("host {}: file not found: {}", ctx.host, a.src)))?;
        Ok(Plan::done(json!({
            "content": base64::engine::general_purpose::STANDARD.encode(&bytes),
            "encoding": "base64",
            "source": a.src,
        })))
    }
}
