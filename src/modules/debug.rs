//! `debug`: print a message or a variable.

use async_trait::async_trait;
use serde_json::{json, Value as Json};

use super::{opt, ArgSpec, Kind, Module, Plan, StepCtx, StepError};

pub struct Debug;

#[async_trait]
impl Module for Debug {
    fn name(&self) -> &'static str {
        "debug"
    }
    fn spec(&self) -> &'static [ArgSpec] {
        const S: &[ArgSpec] = &[opt("msg", Kind::Any), opt("var", Kind::Str), opt("verbosity", Kind::Int)];
        S
    }
    async fn plan(&self, ctx: &StepCtx<'_>, args: &Json) -> Result<Plan, StepError> {
        if let Some(var) = args.get("var").and_then(Json::as_str) {
            let v = ctx.templates.eval(var, ctx.vars).map_err(|e| crate::template::located(&e, &ctx.task.arg_span("var")))?;
            let value = if v.is_undefined() { json!("VARIABLE IS NOT DEFINED!") } else { crate::template::json_of(&v).unwrap_or(Json::Null) };
            return Ok(Plan::done(json!({ var: value })));
        }
        Ok(Plan::done(json!({ "msg": args.get("msg").cloned().unwrap_or(json!("Hello world!")) })))
    }
}
