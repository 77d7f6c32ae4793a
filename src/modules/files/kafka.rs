//! `kafka_checkpoints`: reads and parses the offset checkpoint files of Kafka
//! log dirs (read-only; runs in dry-run). Registers `files` (path, ok, entries
//! or error) and `malformed` (the paths that would stop Kafka from starting).

use async_trait::async_trait;
use documented::Documented;
use serde::Deserialize;
use serde_json::{json, Value as Json};

use crate::facts::{parse_kafka_checkpoint, KAFKA_CHECKPOINTS};
use crate::modules::{de, req, typed, ArgSpec, Kind, Module, Plan, StepCtx, StepError};

/// `kafka_checkpoints`: reads and parses the offset checkpoint files of Kafka log folders (SOP
/// 10.3), to tell a damaged checkpoint from a good one.
///
/// Returns: `files` (each `path`, `ok`, `entries` or `error`) and `malformed` (the paths that would
/// stop Kafka from starting).
///
/// Check mode: runs as in a real run (read-only).
#[derive(Documented)]
pub struct KafkaCheckpoints;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(deserialize_with = "de::list_loose")]
    log_dirs: Vec<String>,
}

#[async_trait]
impl Module for KafkaCheckpoints {
    fn name(&self) -> &'static str {
        "kafka_checkpoints"
    }
    fn doc(&self) -> &'static str {
        Self::DOCS
    }
    fn spec(&self) -> &'static [ArgSpec] {
        const S: &[ArgSpec] = &[
            req("log_dirs", Kind::List).doc("The Kafka log folders whose checkpoint files are read."),
        ];
        S
    }
    async fn plan(&self, ctx: &StepCtx<'_>, args: &Json) -> Result<Plan, StepError> {
        let a: Args = typed("kafka_checkpoints", args)?;
        let mut files = Vec::new();
        let mut malformed = Vec::new();
        for dir in &a.log_dirs {
            for name in KAFKA_CHECKPOINTS {
                let path = format!("{}/{name}", dir.trim_end_matches('/'));
                let Some(bytes) = ctx.read(&path).await? else {
                    files.push(json!({"path": path, "exists": false}));
                    continue;
                };
                match parse_kafka_checkpoint(&String::from_utf8_lossy(&bytes)) {
                    Ok(n) => files.push(json!({"path": path, "exists": true, "ok": true, "entries": n})),
                    Err(e) => {
                        files.push(json!({"path": path, "exists": true, "ok": false, "error": e}));
                        malformed.push(json!(path));
                    }
                }
            }
        }
        Ok(Plan::done(json!({ "files": files, "malformed": malformed })))
    }
}
