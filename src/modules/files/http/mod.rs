//! `get_url` and `uri`: HTTP(S) requests made on the host, as ansible-core makes them there
//! (the host's network, its CA store or `ca_path`), by the host's python3 (which every
//! Ansible-managed host has): one request per round trip, its status, headers and body sent
//! back as JSON. `get_url` then writes the body through [`crate::modules::write`] (so the bytes shown
//! in the plan are the bytes written, and replacing a file is an overwrite for the safety
//! engine); `uri` with GET or HEAD is read-only, any other method is a change.

mod get_url;
mod uri;

use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Value as Json};

use crate::modules::{StepCtx, StepError};
use crate::transport::{quote, Cmd};

pub use get_url::GetUrl;
pub use uri::Uri;

/// The request, on the host: parameters as JSON in argv[1]; prints one JSON object.
pub(super) const FETCH_PY: &str = r#"
import sys, json, base64, ssl, time, urllib.request, urllib.error, email.utils
p = json.loads(sys.argv[1])
handlers = []
if p["url"].lower().startswith("https"):
    if not p.get("validate_certs", True):
        ctx = ssl._create_unverified_context()
    else:
        ctx = ssl.create_default_context(cafile=p.get("ca_path"))
    if p.get("client_cert"):
        ctx.load_cert_chain(p["client_cert"], p.get("client_key"))
    handlers.append(urllib.request.HTTPSHandler(context=ctx))
follow = p.get("follow", "safe")
class Redirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, hdrs, newurl):
        if follow in ("none", "no", False):
            return None
        if follow == "safe" and req.get_method() not in ("GET", "HEAD"):
            return None
        r = urllib.request.HTTPRedirectHandler.redirect_request(self, req, fp, code, msg, hdrs, newurl)
        if r is not None and follow in ("all", "yes") and req.get_method() not in ("GET", "HEAD") and code in (307, 308):
            r = urllib.request.Request(newurl, data=req.data, headers=req.headers, method=req.get_method())
        return r
handlers.append(Redirect())
headers = dict(p.get("headers") or {})
if p.get("user") is not None:
    pw = p.get("password") or ""
    if p.get("force_basic_auth", False):
        headers["Authorization"] = "Basic " + base64.b64encode(("%s:%s" % (p["user"], pw)).encode()).decode()
    else:
        mgr = urllib.request.HTTPPasswordMgrWithDefaultRealm()
        mgr.add_password(None, p["url"], p["user"], pw)
        handlers.append(urllib.request.HTTPBasicAuthHandler(mgr))
if p.get("if_modified_since"):
    headers["If-Modified-Since"] = email.utils.formatdate(p["if_modified_since"], usegmt=True)
if p.get("agent"):
    headers.setdefault("User-Agent", p["agent"])
body = base64.b64decode(p["body"]) if p.get("body") is not None else None
req = urllib.request.Request(p["url"], data=body, method=p.get("method", "GET"), headers=headers)
opener = urllib.request.build_opener(*handlers)
start = time.time()
def out(status, url, reason, hdrs, data, error=None):
    print(json.dumps({"status": status, "url": url, "reason": reason, "error": error,
        "headers": [[k, v] for k, v in (hdrs.items() if hdrs else [])],
        "body": base64.b64encode(data or b"").decode(), "elapsed": int(time.time() - start)}))
try:
    r = opener.open(req, timeout=p.get("timeout", 30))
    out(r.status, r.geturl(), r.reason, r.headers, r.read())
except urllib.error.HTTPError as e:
    out(e.code, e.geturl() or p["url"], str(e.reason), e.headers, e.read(), "HTTP Error %s: %s" % (e.code, e.reason))
except Exception as e:
    out(-1, p["url"], "", None, b"", "Request failed: %s" % e)
"#;

/// What the host's request gave.
#[derive(Debug, Deserialize)]
pub struct Response {
    pub status: i64,
    pub url: String,
    pub reason: String,
    pub error: Option<String>,
    pub headers: Vec<(String, String)>,
    #[serde(deserialize_with = "b64")]
    pub body: Vec<u8>,
    pub elapsed: u64,
}

pub(super) fn b64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    let s = String::deserialize(d)?;
    base64::engine::general_purpose::STANDARD.decode(s).map_err(serde::de::Error::custom)
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    /// `filename=` of a Content-Disposition header.
    fn disposition_name(&self) -> Option<String> {
        let v = self.header("content-disposition")?;
        let i = v.find("filename=")?;
        let name = v[i + 9..].split(';').next()?.trim().trim_matches('"');
        let base = name.rsplit('/').next()?.to_string();
        (!base.is_empty()).then_some(base)
    }
}

/// Runs one request on the host.
pub async fn request(ctx: &StepCtx<'_>, params: &Json) -> Result<Response, StepError> {
    let cmd = Cmd::shell(format!("python3 - {} || {{ echo 'recover: get_url and uri need python3 on the host' >&2; exit 127; }}", quote::quote(&params.to_string()))).stdin(FETCH_PY.as_bytes().to_vec());
    let out = ctx.run(cmd).await?;
    if !out.ok() {
        return Err(StepError::failed(format!("host {}: the request could not be made: {}", ctx.host, out.stderr_str().trim())));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| StepError::failed(format!("host {}: unreadable response from the request helper: {e}", ctx.host)))
}

pub(super) fn url_filename(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let name = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    let no_host = path.matches('/').count() <= 2;
    if name.is_empty() || no_host { "index.html".into() } else { percent_decode(name) }
}

/// `%41` -> `A` (a URL's last path part, as a file name).
pub(super) fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match (b[i], b.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok()).and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(super) fn digest(algo: &str, data: &[u8]) -> Result<String, StepError> {
    crate::modules::files::stat::digest(algo, data).map_err(|e| StepError::failed(format!("get_url: {e}")))
}

pub(super) fn headers_json(h: &Option<Json>) -> Result<Json, StepError> {
    match h {
        None | Some(Json::Null) => Ok(json!({})),
        Some(Json::Object(m)) => Ok(Json::Object(m.iter().map(|(k, v)| (k.clone(), json!(v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())))).collect())),
        Some(other) => Err(StepError::failed(format!("headers must be a mapping of names to values, got {other}"))),
    }
}

