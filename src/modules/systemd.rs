//! `systemd_show`: a unit's properties as `systemctl show` reports them
//! (read-only; runs in dry-run). Registers `props` (name -> value) and `exists`.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Value as Json};

use super::{de, opt, req, typed, ArgSpec, Kind, Module, Plan, StepCtx, StepError};
use crate::facts;

pub struct SystemdShow;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    unit: String,
    #[serde(default, deserialize_with = "de::list_loose")]
    properties: Vec<String>,
}

#[async_trait]
impl Module for SystemdShow {
    fn name(&self) -> &'static str {
        "systemd_show"
    }
    fn spec(&self) -> &'static [ArgSpec] {
        const S: &[ArgSpec] = &[req("unit", Kind::Str), opt("properties", Kind::List)];
        S
    }
    async fn plan(&self, ctx: &StepCtx<'_>, args: &Json) -> Result<Plan, StepError> {
        let a: Args = typed("systemd_show", args)?;
        let mut props = a.properties.clone();
        props.push("LoadState".into());
        let out = ctx.run_ok(facts::systemctl_show_cmd(&a.unit, &props)).await?;
        let map = facts::parse_systemctl_show(&out.stdout_str());
        let exists = map.get("LoadState").and_then(Json::as_str).is_some_and(|s| s != "not-found");
        Ok(Plan::done(json!({ "unit": a.unit, "exists": exists, "props": map })))
    }
}
