//! `get_url`: a download by the host, written as `copy` writes.

use async_trait::async_trait;
use documented::Documented;
use serde::Deserialize;
use serde_json::{json, Value as Json};
use sha2::Digest;

use super::*;
use crate::modules::support::write::{backup_name, plan_write_over, WriteSpec};
use crate::modules::{OWNER_ARG, GROUP_ARG, BACKUP_ARG, UNSAFE_WRITES_ARG, de, opt, req, typed, ArgSpec, Kind, Module, Plan, StepCtx, StepError};
use crate::transport::Cmd;

/// `get_url`: a URL downloaded by the host (its network, its CA store) to a file, written as `copy`
/// writes, skipped when `checksum` already matches.
///
/// Returns: `dest`, `url`, `status_code`, `msg`, `checksum_src`, `checksum_dest`, `size`,
/// `elapsed`; `backup_file` with `backup: true`.
///
/// Check mode: downloads to compare with `dest` and shows whether it would change; writes nothing.
#[derive(Documented)]
pub struct GetUrl;

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
    BACKUP_ARG,
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
    OWNER_ARG,
    GROUP_ARG,
    UNSAFE_WRITES_ARG,
];

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
