//! `assert` (conditions that must hold) and `fail` (stop the host with a message).
//! Both decide during `plan`: they read variables, never the host.

use async_trait::async_trait;
use documented::Documented;
use serde_json::{json, Value as Json};

use crate::modules::{opt, req, ArgSpec, Kind, Module, Plan, StepCtx, StepError};

/// `assert`: fails the host when any of `that` is false.
///
/// Returns: `msg` (`All assertions passed`, or `fail_msg`), `assertion` and `evaluated_to` for the
/// one that failed.
///
/// Check mode: evaluates as in a real run.
#[derive(Documented)]
pub struct Assert;
/// `fail`: fails the host with a message (behind a `when`, usually).
///
/// Returns: `msg`, `failed`.
///
/// Check mode: fails as in a real run.
#[derive(Documented)]
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
    fn doc(&self) -> &'static str {
        Self::DOCS
    }
    fn spec(&self) -> &'static [ArgSpec] {
        const S: &[ArgSpec] = &[
            req("that", Kind::List).doc("Conditions (Jinja2 expressions without braces) that must all be true."),
            opt("fail_msg", Kind::Any).aliases(&["msg"]).doc("The message when a condition is false."),
            opt("success_msg", Kind::Any).doc("The message when every condition holds."),
            opt("quiet", Kind::Bool).default("false").doc("Print less on success."),
        ];
        S
    }
    async fn plan(&self, ctx: &StepCtx<'_>, args: &Json) -> Result<Plan, StepError> {
        // `that` is evaluated from the unrendered task, as Ansible does.
        // Arguments splatted from a template have only their rendered form.
        let raw = ctx.task.args.get("that").or_else(|| args.get("that")).cloned().unwrap_or(Json::Null);
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
                return Err(StepError::Failed { msg: format!("{msg} (failed: {c})"), result: json!({"assertion": c, "evaluated_to": false, "msg": msg}) });
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
    fn doc(&self) -> &'static str {
        Self::DOCS
    }
    fn spec(&self) -> &'static [ArgSpec] {
        const S: &[ArgSpec] = &[
            opt("msg", Kind::Any).default("Failed as requested from task").doc("The failure message."),
        ];
        S
    }
    async fn plan(&self, _ctx: &StepCtx<'_>, args: &Json) -> Result<Plan, StepError> {
        Err(StepError::failed(text(args, "msg").unwrap_or_else(|| "Failed as requested from task".into())))
    }
}
