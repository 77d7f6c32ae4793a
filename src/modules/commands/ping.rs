//! `ping`: the host answers (`pong`, or `data`); `data: crash` fails, as ansible-core's does.

use async_trait::async_trait;
use documented::Documented;
use serde_json::{json, Value as Json};

use crate::modules::{opt, ArgSpec, Kind, Module, Plan, StepCtx, StepError};
use crate::transport::Cmd;

/// `ping`: the host answers over its connection.
///
/// Returns: `ping` (`pong`, or `data`).
///
/// Check mode: runs as in a real run.
#[derive(Documented)]
pub struct Ping;

#[async_trait]
impl Module for Ping {
    fn name(&self) -> &'static str {
        "ping"
    }
    fn doc(&self) -> &'static str {
        Self::DOCS
    }
    fn spec(&self) -> &'static [ArgSpec] {
        const S: &[ArgSpec] = &[
            opt("data", Kind::Str).default("pong").doc("What to answer with; `crash` makes the module fail."),
        ];
        S
    }
    async fn plan(&self, ctx: &StepCtx<'_>, args: &Json) -> Result<Plan, StepError> {
        let data = args.get("data").and_then(Json::as_str).unwrap_or("pong").to_string();
        // A command on the host: the answer proves the connection and the step's user work.
        ctx.run_ok(Cmd::argv(["true"])).await?;
        if data == "crash" {
            return Err(StepError::Failed { msg: "boom".into(), result: serde_json::json!({"msg": "Task failed: Module failed: boom"}) });
        }
        Ok(Plan::done(json!({ "ping": data })))
    }
}
