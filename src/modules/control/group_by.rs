//! `group_by`: the host put in a group named by `key` (spaces become `-`), a child of
//! `parents` (default `all`), in the run's inventory, for the rest of the run. Changed when the
//! inventory changed, as ansible-core reports it.

use async_trait::async_trait;
use documented::Documented;
use serde_json::{json, Value as Json};

use crate::modules::{opt, req, ArgSpec, Kind, Module, Plan, StepCtx, StepError};

/// `group_by`: the host put in a group named by `key`, for the plays after this one.
///
/// Returns: `add_group`, `parent_groups`.
///
/// Check mode: groups as in a real run.
#[derive(Documented)]
pub struct GroupBy;

#[async_trait]
impl Module for GroupBy {
    fn name(&self) -> &'static str {
        "group_by"
    }
    fn doc(&self) -> &'static str {
        Self::DOCS
    }
    fn spec(&self) -> &'static [ArgSpec] {
        const S: &[ArgSpec] = &[
            req("key", Kind::Str).doc("The group to put the host in (a template, per host)."),
            opt("parents", Kind::Any).default("all").doc("Groups the new group becomes a child of."),
        ];
        S
    }
    async fn plan(&self, ctx: &StepCtx<'_>, args: &Json) -> Result<Plan, StepError> {
        let key = match args.get("key") {
            Some(Json::String(s)) => s.clone(),
            Some(Json::Null) | None => return Err(StepError::failed("the 'key' param is required when using group_by")),
            Some(other) => other.to_string(),
        };
        let group = key.replace(' ', "-");
        let parents: Vec<String> = match args.get("parents") {
            None | Some(Json::Null) => vec!["all".into()],
            Some(Json::String(s)) => vec![s.clone()],
            Some(Json::Array(l)) => l.iter().map(|g| g.as_str().map(str::to_string).unwrap_or_else(|| g.to_string())).collect(),
            Some(other) => vec![other.to_string()],
        };
        let parents: Vec<String> = parents.iter().map(|p| p.replace(' ', "-")).collect();
        let changed = ctx.run.change_inventory(&mut |inv| inv.add_dynamic_group(ctx.host, &group, &parents));
        let mut plan = Plan::done(json!({ "add_group": group, "parent_groups": parents }));
        if changed {
            plan.changes.push(format!("put {} in group {group}", ctx.host));
        }
        Ok(plan)
    }
}
