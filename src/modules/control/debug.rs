//! `debug`: print a message or a variable.

use async_trait::async_trait;
use documented::Documented;
use serde_json::{json, Value as Json};

use crate::modules::{opt, ArgSpec, Kind, Module, Plan, StepCtx, StepError};

/// `debug`: prints a message or a variable (at `verbosity` or more `-v`).
///
/// Returns: `msg`, or the variable under its own name.
///
/// Check mode: prints as in a real run.
#[derive(Documented)]
pub struct Debug;

#[async_trait]
impl Module for Debug {
    fn name(&self) -> &'static str {
        "debug"
    }
    fn doc(&self) -> &'static str {
        Self::DOCS
    }
    fn spec(&self) -> &'static [ArgSpec] {
        const S: &[ArgSpec] = &[
            opt("msg", Kind::Any).default("Hello world!").doc("The message to print (a template, or any value)."),
            opt("var", Kind::Str).doc("A variable (or expression) to print by name."),
            opt("verbosity", Kind::Int).default("0").doc("Print only at this many `-v` or more."),
        ];
        S
    }
    fn validate(&self, task: &crate::playbook::Task) -> crate::error::SResult<()> {
        if crate::modules::certainly_given(task, "msg") && crate::modules::certainly_given(task, "var") {
            return Err(crate::error::SourceError::new(task.arg_span("var"), "debug: parameters are mutually exclusive: msg|var"));
        }
        Ok(())
    }
    async fn plan(&self, ctx: &StepCtx<'_>, args: &Json) -> Result<Plan, StepError> {
        crate::modules::exclusive("debug", args, &[("msg", "var")])?;
        // `verbosity: N` prints only under `-v` given N times or more, as ansible-core.
        let verbosity = match args.get("verbosity") {
            None | Some(Json::Null) => 0,
            Some(Json::Number(n)) => n.as_i64().unwrap_or(0),
            Some(Json::String(s)) => s.trim().parse().map_err(|_| StepError::failed(format!("debug: argument 'verbosity' is of type str and we were unable to convert to int: {s:?}")))?,
            Some(other) => return Err(StepError::failed(format!("debug: argument 'verbosity' must be an integer, got {other}"))),
        };
        if verbosity > i64::from(ctx.run.verbosity()) {
            return Ok(Plan { skipped: Some("Verbosity threshold not met.".into()), ..Plan::ok() });
        }
        if let Some(var) = args.get("var").and_then(Json::as_str) {
            let v = ctx.templates.eval(var, ctx.vars).map_err(|e| crate::template::located(&e, &ctx.task.arg_span("var")))?;
            let value = if v.is_undefined() { json!("VARIABLE IS NOT DEFINED!") } else { crate::template::json_of(&v).unwrap_or(Json::Null) };
            return Ok(Plan::done(json!({ var: value })));
        }
        Ok(Plan::done(json!({ "msg": args.get("msg").cloned().unwrap_or(json!("Hello world!")) })))
    }
}
