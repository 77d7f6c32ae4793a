//! `uri`: an HTTP request by the host, its status checked.

use async_trait::async_trait;
use documented::Documented;
use serde::Deserialize;
use serde_json::{json, Value as Json};

use super::*;
use crate::modules::{de, opt, req, typed, ArgSpec, Kind, Module, Outcome, Plan, StepCtx, StepError};
use crate::transport::Cmd;

/// `uri`: an HTTP request made by the host, its status checked against `status_code`.
///
/// Returns: `status`, `url`, `redirected`, `elapsed`, the response headers (lower-cased), `content`
/// and `json` with `return_content`, `msg`.
///
/// Check mode: a GET or HEAD is made as in a real run; other methods are not sent (skipped, as
/// ansible-core does).
#[derive(Documented)]
pub struct Uri;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UriArgs {
    url: String,
    method: Option<String>,
    body: Option<Json>,
    body_format: Option<String>,
    src: Option<String>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    return_content: Option<bool>,
    follow_redirects: Option<Json>,
    creates: Option<String>,
    removes: Option<String>,
    status_code: Option<Json>,
    #[serde(default, deserialize_with = "de::u64_loose")]
    timeout: Option<u64>,
    headers: Option<Json>,
    #[serde(alias = "user")]
    url_username: Option<String>,
    #[serde(alias = "password")]
    url_password: Option<String>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    force_basic_auth: Option<bool>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    validate_certs: Option<bool>,
    ca_path: Option<String>,
    client_cert: Option<String>,
    client_key: Option<String>,
    http_agent: Option<String>,
    dest: Option<String>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    use_proxy: Option<bool>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    decompress: Option<bool>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    use_netrc: Option<bool>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    remote_src: Option<bool>,
    #[serde(default, deserialize_with = "de::mode")]
    mode: Option<u32>,
    owner: Option<String>,
    group: Option<String>,
}

const URI_SPEC: &[ArgSpec] = &[
    req("url", Kind::Str).doc("The address to request."),
    opt("method", Kind::Str).default("GET").doc("The HTTP method."),
    opt("body", Kind::Any).doc("The request body (JSON-encoded with `body_format: json`)."),
    opt("body_format", Kind::Str).default("raw").doc("`raw`, `json` or `form-urlencoded`."),
    opt("src", Kind::Str).doc("A file whose content is the body."),
    opt("return_content", Kind::Bool).default("false").doc("Return the body as `content` (and `json` when it is JSON)."),
    opt("follow_redirects", Kind::Any).default("safe").doc("`safe` (GET and HEAD), `all`, `none` (or yes/no)."),
    opt("creates", Kind::Str).doc("A path on the host: when it exists, no request is made."),
    opt("removes", Kind::Str).doc("A path on the host: when it does not exist, no request is made."),
    opt("status_code", Kind::Any).default("[200]").doc("The status codes that count as success."),
    opt("timeout", Kind::Int).doc("Seconds the request may take."),
    opt("headers", Kind::Any).doc("Request headers (a mapping)."),
    opt("url_username", Kind::Str).aliases(&["user"]).doc("The user for HTTP authentication."),
    opt("url_password", Kind::Str).aliases(&["password"]).doc("The password for HTTP authentication."),
    opt("force_basic_auth", Kind::Bool).default("false").doc("Send basic authentication without waiting for a 401."),
    opt("validate_certs", Kind::Bool).default("true").doc("Check the server's certificate."),
    opt("ca_path", Kind::Str).doc("A CA bundle on the host to check the server with."),
    opt("client_cert", Kind::Str).doc("A client certificate (PEM) on the host."),
    opt("client_key", Kind::Str).doc("The client certificate's key on the host."),
    opt("http_agent", Kind::Str).default("ansible-httpget").doc("The User-Agent header."),
    opt("dest", Kind::Str).doc("Write the body to this file on the host."),
    opt("use_proxy", Kind::Bool).default("true").doc("Use the proxy the host's environment names."),
    opt("decompress", Kind::Bool).default("true").doc("Decompress a compressed answer."),
    opt("use_netrc", Kind::Bool).default("true").doc("Read credentials from the host's `~/.netrc`."),
    opt("remote_src", Kind::Bool).default("false").doc("`src` is on the host."),
    opt("mode", Kind::Any).doc("The mode of `dest`."),
    opt("owner", Kind::Str).doc("The owner of `dest`."),
    opt("group", Kind::Str).doc("The group of `dest`."),
];

fn form_urlencoded(v: &Json) -> Result<String, StepError> {
    let pairs: Vec<(String, String)> = match v {
        Json::Object(m) => m.iter().map(|(k, v)| (k.clone(), v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()))).collect(),
        Json::Array(items) => items.iter().map(|i| match i {
            Json::Array(kv) if kv.len() == 2 => Ok((kv[0].as_str().unwrap_or_default().to_string(), kv[1].as_str().map(str::to_string).unwrap_or_else(|| kv[1].to_string()))),
            _ => Err(StepError::failed("failed to parse body as form_urlencoded: a list must hold [name, value] pairs")),
        }).collect::<Result<_, _>>()?,
        other => return Err(StepError::failed(format!("failed to parse body as form_urlencoded: {other}"))),
    };
    let enc = |s: &str| s.bytes().map(|b| if b.is_ascii_alphanumeric() || b"_.-~".contains(&b) { (b as char).to_string() } else if b == b' ' { "+".into() } else { format!("%{b:02X}") }).collect::<String>();
    Ok(pairs.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect::<Vec<_>>().join("&"))
}

impl UriArgs {
    fn statuses(&self) -> Result<Vec<i64>, StepError> {
        let bad = |v: &Json| StepError::failed(format!("uri: status_code must be a number or a list of numbers, got {v}"));
        Ok(match &self.status_code {
            None | Some(Json::Null) => vec![200],
            Some(Json::Array(a)) => a.iter().map(|v| v.as_i64().or_else(|| v.as_str().and_then(|s| s.trim().parse().ok())).ok_or_else(|| bad(v))).collect::<Result<_, _>>()?,
            Some(Json::String(s)) => s.split(',').map(|x| x.trim().parse().map_err(|_| bad(&json!(s)))).collect::<Result<_, _>>()?,
            Some(v) => vec![v.as_i64().ok_or_else(|| bad(v))?],
        })
    }
}

/// ansible-core's uri result: status, url, the headers as lower-case keys, `json` for a JSON
/// body, `content` with return_content; a status not in `status_code` fails.
fn uri_result(r: &Response, url: &str, return_content: bool, statuses: &[i64]) -> Result<serde_json::Map<String, Json>, StepError> {
    let mut res = serde_json::Map::new();
    for (k, v) in &r.headers {
        res.insert(k.replace('-', "_").to_lowercase(), json!(v));
    }
    res.insert("status".into(), json!(r.status));
    res.insert("url".into(), json!(r.url));
    res.insert("redirected".into(), json!(r.url != url));
    res.insert("elapsed".into(), json!(r.elapsed));
    res.insert("changed".into(), json!(false));
    let ctype = r.header("content-type").unwrap_or("application/octet-stream").to_lowercase();
    let sub = ctype.split(';').next().unwrap_or("").split('/').nth(1).unwrap_or("").to_string();
    let sub = sub.rsplit('+').next().unwrap_or("").to_string();
    let maybe_json = ["json", "javascript", "x-javascript", "x-json"].contains(&sub.as_str());
    let text = String::from_utf8_lossy(&r.body).into_owned();
    if maybe_json {
        if let Ok(j) = serde_json::from_str::<Json>(&text) {
            res.insert("json".into(), j);
        }
    }
    let msg = match &r.error {
        Some(e) => e.clone(),
        None => format!("OK ({} bytes)", r.header("content-length").map(str::to_string).unwrap_or_else(|| r.body.len().to_string())),
    };
    if return_content || !statuses.contains(&r.status) {
        res.insert("content".into(), json!(text));
    }
    if !statuses.contains(&r.status) {
        res.insert("msg".into(), json!(format!("Status code was {} and not {statuses:?}: {msg}", r.status)));
        let m = res["msg"].as_str().unwrap_or_default().to_string();
        return Err(StepError::Failed { msg: m, result: Json::Object(res) });
    }
    res.insert("msg".into(), json!(msg));
    Ok(res)
}

#[async_trait]
impl Module for Uri {
    fn name(&self) -> &'static str {
        "uri"
    }
    fn doc(&self) -> &'static str {
        Self::DOCS
    }
    fn spec(&self) -> &'static [ArgSpec] {
        URI_SPEC
    }
    async fn plan(&self, ctx: &StepCtx<'_>, args: &Json) -> Result<Plan, StepError> {
        let a: UriArgs = typed("uri", args)?;
        let _ = (a.use_proxy, a.decompress, a.use_netrc);
        if ctx.check {
            // ansible-core's uri does not support check mode: the task is skipped.
            return Ok(Plan { skipped: Some("remote module (uri) does not support check mode".into()), ..Plan::ok() });
        }
        let method = a.method.clone().unwrap_or_else(|| "GET".into());
        if method.is_empty() || !method.chars().all(|c| c.is_ascii_uppercase()) {
            return Err(StepError::failed("Parameter 'method' needs to be a single word in uppercase, like GET or POST."));
        }
        if a.dest.is_some() || a.src.is_some() {
            return Err(StepError::failed("uri: dest and src are not supported by recover; use get_url to save a download"));
        }
        if let Some(p) = &a.creates {
            if ctx.run(Cmd::argv(["test", "-e", p])).await?.ok() {
                return Ok(Plan::done(json!({"stdout": format!("skipped, since '{p}' exists"), "changed": false})));
            }
        }
        if let Some(p) = &a.removes {
            if !ctx.run(Cmd::argv(["test", "-e", p])).await?.ok() {
                return Ok(Plan::done(json!({"stdout": format!("skipped, since '{p}' does not exist"), "changed": false})));
            }
        }
        let mut headers = headers_json(&a.headers)?;
        let has = |h: &Json, k: &str| h.as_object().is_some_and(|m| m.keys().any(|x| x.eq_ignore_ascii_case(k)));
        let body: Option<Vec<u8>> = match (a.body_format.as_deref().unwrap_or("raw"), &a.body) {
            (_, None) | (_, Some(Json::Null)) => None,
            ("json", Some(b)) => {
                if !has(&headers, "content-type") {
                    headers["Content-Type"] = json!("application/json");
                }
                Some(match b { Json::String(s) => s.clone(), other => crate::template::pyjson::dumps(other, None, false, false) }.into_bytes())
            }
            ("form-urlencoded", Some(b)) => {
                if !has(&headers, "content-type") {
                    headers["Content-Type"] = json!("application/x-www-form-urlencoded");
                }
                Some(match b { Json::String(s) => s.clone(), other => form_urlencoded(other)? }.into_bytes())
            }
            ("raw", Some(b)) => Some(match b { Json::String(s) => s.clone().into_bytes(), other => other.to_string().into_bytes() }),
            (other, Some(_)) => return Err(StepError::failed(format!("uri: body_format {other} is not supported by recover (raw, json, form-urlencoded)"))),
        };
        let follow = match &a.follow_redirects {
            None => json!("safe"),
            Some(Json::Bool(true)) => json!("all"),
            Some(Json::Bool(false)) => json!("none"),
            Some(v) => v.clone(),
        };
        let params = json!({
            "url": a.url, "method": method, "headers": headers, "timeout": a.timeout.unwrap_or(30), "follow": follow,
            "user": a.url_username, "password": a.url_password, "force_basic_auth": a.force_basic_auth.unwrap_or(false),
            "validate_certs": a.validate_certs.unwrap_or(true), "ca_path": a.ca_path, "client_cert": a.client_cert, "client_key": a.client_key,
            "agent": a.http_agent.clone().unwrap_or_else(|| "ansible-httpget".into()),
            "body": body.map(|b| base64::engine::general_purpose::STANDARD.encode(b)),
        });
        let statuses = a.statuses()?;
        let _ = (a.remote_src, a.mode, &a.owner, &a.group);
        if matches!(method.as_str(), "GET" | "HEAD" | "OPTIONS") {
            // Read-only: made now, in dry-run too.
            let r = request(ctx, &params).await?;
            let res = uri_result(&r, &a.url, a.return_content.unwrap_or(false), &statuses)?;
            return Ok(Plan::done(Json::Object(res)));
        }
        let mut plan = Plan::ok();
        plan.changes.push(format!("send {method} {}", a.url));
        plan.result.insert("__params".into(), params);
        plan.result.insert("__statuses".into(), json!(statuses));
        plan.result.insert("__return_content".into(), json!(a.return_content.unwrap_or(false)));
        Ok(plan)
    }
    async fn apply(&self, ctx: &StepCtx<'_>, mut plan: Plan) -> Result<Outcome, StepError> {
        let params = plan.result.remove("__params").unwrap_or(Json::Null);
        let statuses: Vec<i64> = plan.result.remove("__statuses").and_then(|v| serde_json::from_value(v).ok()).unwrap_or_else(|| vec![200]);
        let return_content = plan.result.remove("__return_content").and_then(|v| v.as_bool()).unwrap_or(false);
        let r = request(ctx, &params).await?;
        let res = uri_result(&r, params["url"].as_str().unwrap_or_default(), return_content, &statuses)?;
        // ansible-core's uri reports changed: false for any method; recover says what it sent.
        Ok(Outcome { changed: false, result: res })
    }
}
