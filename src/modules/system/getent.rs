//! `getent`: a database of the host's name service (`passwd`, `group`, `hosts`, `services`,
//! ...) as the fact `getent_<database>`, as ansible-core shapes it: each entry's first field
//! maps to the others (a key seen again makes a list of them). Read-only.

use async_trait::async_trait;
use documented::Documented;
use serde::Deserialize;
use serde_json::{json, Value as Json};

use crate::modules::{de, opt, req, typed, ArgSpec, Kind, Module, Plan, StepCtx, StepError};
use crate::transport::Cmd;

/// `getent`: entries of a name service database (`passwd`, `group`, `hosts`, ...).
///
/// Returns: `ansible_facts.getent_DATABASE` (key to its fields).
///
/// Check mode: runs as in a real run (read-only).
#[derive(Documented)]
pub struct Getent;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    database: String,
    key: Option<Json>,
    service: Option<String>,
    split: Option<String>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    fail_key: Option<bool>,
}

/// Python's `str.split(sep)` (`None`: runs of whitespace).
fn py_split<'a>(line: &'a str, sep: Option<&str>) -> Vec<&'a str> {
    match sep {
        Some(s) if !s.is_empty() => line.split(s).collect(),
        _ => line.split_whitespace().collect(),
    }
}

#[async_trait]
impl Module for Getent {
    fn name(&self) -> &'static str {
        "getent"
    }
    fn doc(&self) -> &'static str {
        Self::DOCS
    }
    fn spec(&self) -> &'static [ArgSpec] {
        const S: &[ArgSpec] = &[
            req("database", Kind::Str).doc("The database (`passwd`, `group`, `hosts`, `services`, ...)."),
            opt("key", Kind::Any).doc("The entry to look up (all of them otherwise)."),
            opt("service", Kind::Str).doc("The NSS service to ask."),
            opt("split", Kind::Str).doc("The field separator (the database's own otherwise)."),
            opt("fail_key", Kind::Bool).default("true").doc("Fail when `key` is not found."),
        ];
        S
    }
    async fn plan(&self, ctx: &StepCtx<'_>, args: &Json) -> Result<Plan, StepError> {
        let a: Args = typed("getent", args)?;
        let key = a.key.as_ref().map(|k| k.as_str().map(str::to_string).unwrap_or_else(|| k.to_string()));
        let mut argv = vec!["getent".to_string(), a.database.clone()];
        if let Some(k) = &key {
            argv.push(k.clone());
        }
        if let Some(s) = &a.service {
            argv.extend(["-s".into(), s.clone()]);
        }
        let out = ctx.run(Cmd::argv(argv)).await?;
        let split = a.split.clone().or_else(|| ["passwd", "shadow", "group", "gshadow"].contains(&a.database.as_str()).then(|| ":".to_string()));
        let tree = format!("getent_{}", a.database);
        let mut db = serde_json::Map::new();
        match out.rc {
            0 => {
                let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
                for line in out.stdout_str().lines() {
                    let rec = py_split(line, split.as_deref());
                    let Some(first) = rec.first().map(|s| s.to_string()) else { continue };
                    let rest = json!(rec[1..]);
                    match seen.get(&first).copied() {
                        Some(n) => {
                            if n == 1 {
                                let old = db.remove(&first).unwrap_or(Json::Null);
                                db.insert(first.clone(), json!([old]));
                            }
                            if let Some(Json::Array(list)) = db.get_mut(&first) {
                                list.push(rest);
                            }
                            seen.insert(first, n + 1);
                        }
                        None => {
                            db.insert(first.clone(), rest);
                            seen.insert(first, 1);
                        }
                    }
                }
                Ok(Plan::done(json!({"ansible_facts": {tree: db}})))
            }
            2 if !a.fail_key.unwrap_or(true) => {
                db.insert(key.unwrap_or_default(), Json::Null);
                Ok(Plan::done(json!({"ansible_facts": {tree: db}, "msg": "One or more supplied key could not be found in the database."})))
            }
            1 => Err(StepError::failed("Missing arguments, or database unknown.")),
            2 => Err(StepError::failed("One or more supplied key could not be found in the database.")),
            3 => Err(StepError::failed("Enumeration not supported on this database.")),
            _ => Err(StepError::failed("Unexpected failure!")),
        }
    }
}
