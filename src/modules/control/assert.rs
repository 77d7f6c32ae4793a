//! `assert` (conditions that must hold) and `fail` (stop the host with a message).
//! Both decide during `plan`: they read variables, never the host.

use async_trait::async_trait;
use serde_json::{json, Value as Json};

use crate::modules::{opt, req, ArgSpec, Kind, Module, Plan, StepCtx, StepError};

pub struct Assert;
pub struct Fail;

fn text(args: &Json, key: &str) -> Option<String> {
    args.get(key).map(|v| match v {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    })
}

#[async_trait]
impl Module for Assert {
    fn name(&self) -> &'static str {
        "assert"
    }
    fn spec(&self) -> &'static [ArgSpec] {
        const S: &[ArgSpec] = &[req("that", Kind::List), opt("fail_msg", Kind::Any), opt("msg", Kind::Any), opt("success_msg", Kind::Any), opt("quiet", Kind::Bool)];
        S
    }
    async fn plan(&self, ctx: &StepCtx<'_>, args: &Json) -> Result<Plan, StepError> {
        // `that` is evaluated from the unrendered task, as Ansible does.
        let raw = ctx.task.args.get("that").cloned().unwrap_or(Json::Null);
        let conds: Vec<String> = match raw {
            Json::Array(items) => items.into_iter().map(|i| i.as_str().map(str::to_string).unwrap_or_else(|| i.to_string())).collect(),
            Json::String(s) => vec![s],
            Json::Bool(b) => vec![b.to_string()],
            other => vec![other.to_string()],
        };
        let span = ctx.task.arg_span("that");
        for c in &conds {
            if !ctx.templates.eval_bool(c, ctx.vars, &span)? {
                let msg = text(args, "fail_msg").or_else(|| text(args, "msg")).unwrap_or_else(|| "Assertion failed".into());
                return Err(StepError::Failed { msg: format!("{msg} (failed: {c})"), result: json!({"assertion": c, "evaluated_to": false}) });
            }
        }
        let msg = text(args, "success_msg").unwrap_or_else(|| "All assertions passed".into());
        Ok(Plan::done(json!({ "msg": msg })))
    }
}

#[async_trait]
impl Module for Fail {
    fn name(&self) -> &'static str {
        "fail"
    }
    fn spec(&self) -> &'static [ArgSpec] {
        const S: &[ArgSpec] = &[opt("msg", Kind::Any)];
        S
    }
    async fn plan(&self, _ctx: &StepCtx<'_>, args: &Json) -> Result<Plan, StepError> {
        Err(StepError::failed(text(args, "msg").unwrap_or_else(|| "Failed as requested from task".into())))
    }
}
