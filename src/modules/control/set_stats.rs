//! `set_stats`: custom statistics for the run (`data`, `per_host`, `aggregate`), returned as
//! `ansible_stats` as ansible-core's action does. recover keeps them in the task's result;
//! it prints no "CUSTOM STATS" section (ansible-core shows one only with `show_custom_stats`).

use async_trait::async_trait;
use documented::Documented;
use serde_json::{json, Value as Json};

use crate::modules::{opt, ArgSpec, Kind, Module, Plan, StepCtx, StepError};

/// `set_stats`: custom statistics of the run, printed at its end.
///
/// Returns: `ansible_stats` (`data`, `per_host`, `aggregate`).
///
/// Check mode: sets them as in a real run.
#[derive(Documented)]
pub struct SetStats;

#[async_trait]
impl Module for SetStats {
    fn name(&self) -> &'static str {
        "set_stats"
    }
    fn doc(&self) -> &'static str {
        Self::DOCS
    }
    fn spec(&self) -> &'static [ArgSpec] {
        const S: &[ArgSpec] = &[
            opt("data", Kind::Any).doc("The custom statistics to set (a mapping)."),
            opt("per_host", Kind::Bool).default("false").doc("Keep the statistics per host."),
            opt("aggregate", Kind::Bool).default("true").doc("Add to the statistics already set instead of replacing them."),
        ];
        S
    }
    async fn plan(&self, _ctx: &StepCtx<'_>, args: &Json) -> Result<Plan, StepError> {
        let data = match args.get("data") {
            None | Some(Json::Null) => json!({}),
            Some(d @ Json::Object(_)) => d.clone(),
            Some(_) => return Err(StepError::failed("The 'data' option needs to be a dictionary/hash")),
        };
        for k in data.as_object().into_iter().flat_map(|m| m.keys()) {
            if !crate::playbook::is_identifier(k) {
                return Err(StepError::failed(format!("Invalid variable name in 'data': {k:?}")));
            }
        }
        let flag = |k: &str, default: bool| -> Result<bool, StepError> {
            match args.get(k) {
                None | Some(Json::Null) => Ok(default),
                // ansible-core reads these with boolean(strict=False): other words are false.
                Some(Json::String(s)) => Ok(crate::modules::de::bool_word(s).unwrap_or(false)),
                Some(v) => crate::modules::de::bool_value(v).ok_or_else(|| StepError::failed(format!("set_stats: {k} must be true or false, got {v}"))),
            }
        };
        Ok(Plan::done(json!({ "ansible_stats": { "data": data, "per_host": flag("per_host", false)?, "aggregate": flag("aggregate", true)? } })))
    }
}
