//! `get_url` and `uri`: HTTP(S) requests made on the host, as ansible-core makes them there
//! (the host's network, its CA store or `ca_path`), by the host's python3 (which every
//! Ansible-managed host has): one request per round trip, its status, headers and body sent
//! back as JSON. `get_url` then writes the body through [`crate::modules::write`] (so the bytes shown
//! in the plan are the bytes written, and replacing a file is an overwrite for the safety
//! engine); `uri` with GET or HEAD is read-only, any other method is a change.

use async_trait::async_trait;
use base64::Engine as _;
use documented::Documented;
use serde::Deserialize;
use serde_json::{json, Value as Json};
use sha2::Digest;

use crate::modules::support::write::{backup_name, plan_write_over, WriteSpec};
use crate::modules::{de, opt, req, typed, ArgSpec, Kind, Module, Outcome, Plan, StepCtx, StepError};
use crate::transport::{quote, Cmd};

/// `get_url`: a URL downloaded by the host (its network, its CA store) to a file, written as `copy`
/// writes, skipped when `checksum` already matches.
///
/// Returns: `dest`, `url`, `status_code`, `msg`, `checksum_src`, `checksum_dest`, `size`,
/// `elapsed`; `backup_file` with `backup: true`.
///
/// Check mode: downloads to compare with `dest` and shows whether it would change; writes nothing.
#[derive(Documented)]
pub struct GetUrl;
/// `uri`: an HTTP request made by the host, its status checked against `status_code`.
///
/// Returns: `status`, `url`, `redirected`, `elapsed`, the response headers (lower-cased), `content`
/// and `json` with `return_content`, `msg`.
///
/// Check mode: a GET or HEAD is made as in a real run; other methods are not sent (skipped, as
/// ansible-core does).
#[derive(Documented)]
pub struct Uri;

/// The request, on the host: parameters as JSON in argv[1]; prints one JSON object.
const FETCH_PY: &str = r#"
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

fn b64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
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

fn url_filename(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let name = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    let no_host = path.matches('/').count() <= 2;
    if name.is_empty() || no_host { "index.html".into() } else { percent_decode(name) }
}

/// `%41` -> `A` (a URL's last path part, as a file name).
fn percent_decode(s: &str) -> String {
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

fn digest(algo: &str, data: &[u8]) -> Result<String, StepError> {
    crate::modules::files::stat::digest(algo, data).map_err(|e| StepError::failed(format!("get_url: {e}")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GetUrlArgs {
    url: String,
    dest: String,
    #[serde(default)]
    checksum: Option<String>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    force: Option<bool>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    backup: Option<bool>,
    headers: Option<Json>,
    #[serde(default, deserialize_with = "de::u64_loose")]
    timeout: Option<u64>,
    #[serde(alias = "username")]
    url_username: Option<String>,
    #[serde(alias = "password")]
    url_password: Option<String>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    force_basic_auth: Option<bool>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    validate_certs: Option<bool>,
    client_cert: Option<String>,
    client_key: Option<String>,
    http_agent: Option<String>,
    tmp_dest: Option<String>,
    ciphers: Option<Json>,
    unredirected_headers: Option<Json>,
    #[serde(alias = "attr")]
    attributes: Option<String>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    use_proxy: Option<bool>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    decompress: Option<bool>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    use_netrc: Option<bool>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    use_gssapi: Option<bool>,
    #[serde(default, deserialize_with = "de::mode")]
    mode: Option<u32>,
    owner: Option<String>,
    group: Option<String>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    unsafe_writes: Option<bool>,
}

const GET_URL_SPEC: &[ArgSpec] = &[
    req("url", Kind::Str).doc("The address to download."),
    req("dest", Kind::Str).doc("The file (or folder) on the host to write."),
    opt("checksum", Kind::Str).doc("`ALGORITHM:DIGEST` the download must match (also skips a download that matches)."),
    opt("force", Kind::Bool).default("false").doc("Download even when `dest` exists."),
    opt("backup", Kind::Bool).default("false").doc("Keep a copy of the file it replaces (recover always takes its verified backup)."),
    opt("headers", Kind::Any).doc("Request headers (a mapping)."),
    opt("timeout", Kind::Int).doc("Seconds the request may take."),
    opt("url_username", Kind::Str).aliases(&["username"]).doc("The user for HTTP authentication."),
    opt("url_password", Kind::Str).aliases(&["password"]).doc("The password for HTTP authentication."),
    opt("force_basic_auth", Kind::Bool).default("false").doc("Send basic authentication without waiting for a 401."),
    opt("validate_certs", Kind::Bool).default("true").doc("Check the server's certificate."),
    opt("ciphers", Kind::List).doc("Refused by name."),
    opt("unredirected_headers", Kind::List).doc("Headers not sent again after a redirect."),
    opt("attributes", Kind::Str).aliases(&["attr"]).doc("Refused by name (file attributes)."),
    opt("client_cert", Kind::Str).doc("A client certificate (PEM) on the host."),
    opt("client_key", Kind::Str).doc("The client certificate's key on the host."),
    opt("http_agent", Kind::Str).default("ansible-httpget").doc("The User-Agent header."),
    opt("tmp_dest", Kind::Str).doc("Where the download is written before it is moved."),
    opt("use_proxy", Kind::Bool).default("true").doc("Use the proxy the host's environment names."),
    opt("decompress", Kind::Bool).default("true").doc("Decompress a compressed answer."),
    opt("use_netrc", Kind::Bool).default("true").doc("Read credentials from the host's `~/.netrc`."),
    opt("use_gssapi", Kind::Bool).doc("Refused by name."),
    opt("mode", Kind::Any).doc("The file's mode."),
    opt("owner", Kind::Str).doc("The file's owner."),
    opt("group", Kind::Str).doc("The file's group."),
    opt("unsafe_writes", Kind::Bool).default("false").doc("Accepted for Ansible; recover always writes through a temporary file."),
];

fn headers_json(h: &Option<Json>) -> Result<Json, StepError> {
    match h {
        None | Some(Json::Null) => Ok(json!({})),
        Some(Json::Object(m)) => Ok(Json::Object(m.iter().map(|(k, v)| (k.clone(), json!(v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())))).collect())),
        Some(other) => Err(StepError::failed(format!("headers must be a mapping of names to values, got {other}"))),
    }
}

#[async_trait]
impl Module for GetUrl {
    fn name(&self) -> &'static str {
        "get_url"
    }
    fn doc(&self) -> &'static str {
        Self::DOCS
    }
    fn spec(&self) -> &'static [ArgSpec] {
        GET_URL_SPEC
    }
    async fn plan(&self, ctx: &StepCtx<'_>, args: &Json) -> Result<Plan, StepError> {
        let a: GetUrlArgs = typed("get_url", args)?;
        let _ = (a.tmp_dest.as_ref(), a.use_proxy, a.decompress, a.use_netrc, a.unsafe_writes);
        for (k, set) in [("use_gssapi", a.use_gssapi == Some(true)), ("ciphers", a.ciphers.is_some()), ("unredirected_headers", a.unredirected_headers.is_some()), ("attributes", a.attributes.as_deref().is_some_and(|x| !x.is_empty()))] {
            if set {
                return Err(StepError::failed(format!("get_url: {k} is not supported by recover")));
            }
        }
        let base = json!({
            "method": "GET", "headers": headers_json(&a.headers)?, "timeout": a.timeout.unwrap_or(10),
            "user": a.url_username, "password": a.url_password, "force_basic_auth": a.force_basic_auth.unwrap_or(false),
            "validate_certs": a.validate_certs.unwrap_or(true), "client_cert": a.client_cert, "client_key": a.client_key,
            "agent": a.http_agent.clone().unwrap_or_else(|| "ansible-httpget".into()),
        });
        let with = |extra: Json| {
            let mut p = base.clone();
            if let (Json::Object(m), Json::Object(e)) = (&mut p, extra) {
                m.extend(e);
            }
            p
        };
        // The checksum: `algo:hex`, or `algo:URL` of a sums file naming the file.
        let mut checksum: Option<(String, String)> = None;
        if let Some(c) = a.checksum.as_deref().filter(|c| !c.is_empty()) {
            let (algo, value) = c.split_once(':').ok_or_else(|| StepError::failed("The checksum parameter has to be in format <algorithm>:<checksum>"))?;
            let value = if value.starts_with("http://") || value.starts_with("https://") || value.starts_with("ftp://") || value.starts_with("file://") {
                let r = request(ctx, &with(json!({"url": value}))).await?;
                if r.status != 200 {
                    return Err(StepError::failed(format!("Request failed: {}", r.error.unwrap_or_else(|| format!("status {}", r.status)))));
                }
                let name = url_filename(&a.url);
                let text = String::from_utf8_lossy(&r.body).into_owned();
                let found = text.lines().filter_map(|l| {
                    let mut w = l.split_whitespace();
                    let (sum, file) = (w.next()?, w.next());
                    match file {
                        None if text.lines().filter(|l| !l.trim().is_empty()).count() == 1 => Some(sum.to_string()),
                        Some(f) if f.trim_start_matches('*').trim_start_matches("./") == name => Some(sum.to_string()),
                        _ => None,
                    }
                }).next();
                found.ok_or_else(|| StepError::failed(format!("Unable to find a checksum for file '{name}' in '{value}'")))?
            } else {
                value.to_string()
            };
            let value: String = value.chars().filter(|c| c.is_alphanumeric()).collect::<String>().to_lowercase();
            if value.is_empty() || !value.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(StepError::failed("The checksum format is invalid"));
            }
            checksum = Some((algo.to_lowercase(), value));
        }
        let dest_stat = crate::facts::parse_stat(&ctx.run(crate::facts::stat_cmd(&a.dest)).await?.stdout_str());
        let dest_is_dir = dest_stat.as_ref().is_some_and(|s| s.kind == crate::facts::FileKind::Dir);
        let mut plan = Plan::ok();
        plan.result.insert("url".into(), json!(a.url));
        plan.result.insert("dest".into(), json!(a.dest));
        let mut force = a.force.unwrap_or(false);
        let mut since = None;
        if let (false, Some(st)) = (dest_is_dir, &dest_stat) {
            let current = ctx.read(&a.dest).await?;
            if let (false, Some((algo, want)), Some(bytes)) = (force, &checksum, &current) {
                if digest(algo, bytes)? == *want {
                    // The file is there with the right checksum: only its attributes may change.
                    let spec = WriteSpec { dest: a.dest.clone(), content: bytes.clone(), mode: a.mode, owner: a.owner.clone(), group: a.group.clone(), validate: None, validate_in_place: false, backup: None };
                    let mut p = plan_write_over(ctx, spec, (dest_stat.clone(), current.clone()))?;
                    p.result.extend(plan.result);
                    p.result.insert("msg".into(), json!(if p.changed() { "file already exists but file attributes changed" } else { "file already exists" }));
                    return Ok(p);
                }
                force = true;
            }
            if !force {
                since = Some(st.mtime);
            }
        }
        if ctx.check {
            // As ansible-core in check mode: a HEAD request (a page that fails, fails), and as it
            // says nothing of the content, anything but a matching checksum is a change.
            let r = request(ctx, &with(json!({"url": a.url, "method": "HEAD", "if_modified_since": since}))).await?;
            if r.status == 304 {
                return Ok(plan);
            }
            if !(200..300).contains(&r.status) {
                let msg = r.error.clone().unwrap_or_else(|| format!("HTTP Error {}: {}", r.status, r.reason));
                return Err(StepError::Failed { msg: "Request failed".into(), result: json!({"status_code": r.status, "response": msg, "url": a.url, "dest": a.dest}) });
            }
            plan.changes.push(format!("download {} to {}", a.url, a.dest));
            return Ok(plan);
        }
        let r = request(ctx, &with(json!({"url": a.url, "if_modified_since": since}))).await?;
        plan.result.insert("status_code".into(), json!(r.status));
        plan.result.insert("elapsed".into(), json!(r.elapsed));
        if r.status == 304 {
            plan.result.insert("msg".into(), json!(format!("HTTP Error 304: {}", r.reason)));
            return Ok(plan);
        }
        if !(200..300).contains(&r.status) {
            let msg = r.error.clone().unwrap_or_else(|| format!("HTTP Error {}: {}", r.status, r.reason));
            return Err(StepError::Failed { msg: "Request failed".into(), result: json!({"status_code": r.status, "response": msg, "url": a.url, "dest": a.dest}) });
        }
        let dest = if dest_is_dir { format!("{}/{}", a.dest.trim_end_matches('/'), r.disposition_name().unwrap_or_else(|| url_filename(&r.url))) } else { a.dest.clone() };
        if let Some((algo, want)) = &checksum {
            let got = digest(algo, &r.body)?;
            if got != *want {
                return Err(StepError::failed(format!("The checksum for {dest} did not match {want}; it was {got}.")));
            }
        }
        let current = if dest_is_dir { ctx.stat_read(&dest).await? } else { (dest_stat.clone(), ctx.read(&a.dest).await?) };
        if current.0.is_none() {
            let parent = dest.rsplit_once('/').map(|(d, _)| if d.is_empty() { "/" } else { d }).unwrap_or(".");
            if !ctx.run(Cmd::argv(["test", "-d", parent])).await?.ok() {
                return Err(StepError::failed(format!("Destination {parent} does not exist")));
            }
        }
        let sha1 = |b: &[u8]| format!("{:x}", sha1::Sha1::digest(b));
        plan.result.insert("checksum_src".into(), json!(sha1(&r.body)));
        if let Some(b) = &current.1 {
            plan.result.insert("checksum_dest".into(), json!(sha1(b)));
        }
        plan.result.insert("md5sum".into(), json!(format!("{:x}", md5::Md5::digest(&r.body))));
        plan.result.insert("size".into(), json!(r.body.len()));
        plan.result.insert("msg".into(), json!(format!("OK ({} bytes)", r.header("content-length").map(str::to_string).unwrap_or_else(|| r.body.len().to_string()))));
        plan.result.insert("dest".into(), json!(dest));
        let backup = (a.backup.unwrap_or(false) && current.1.is_some()).then(|| backup_name(&dest));
        let spec = WriteSpec { dest: dest.clone(), content: r.body, mode: a.mode, owner: a.owner, group: a.group, validate: None, validate_in_place: false, backup };
        let mut p = plan_write_over(ctx, spec, current)?;
        // ansible-core shows no content diff for a download.
        p.diff = None;
        if let Some(c) = p.changes.first_mut() {
            *c = format!("download {} to {dest}", a.url);
        }
        let backup_file = p.result.remove("backup_file");
        p.result.extend(plan.result);
        if let Some(b) = backup_file {
            p.result.insert("backup_file".into(), b);
        }
        Ok(p)
    }
}

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
