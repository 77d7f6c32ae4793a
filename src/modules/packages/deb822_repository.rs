//! `deb822_repository`: an APT source in the deb822 format,
//! `/etc/apt/sources.list.d/<slug>.sources`, written as ansible-core's module writes it (its
//! fields in name order, `X-Repolib-Name`, `URIs`, yes/no booleans, a multi-line key indented),
//! with `signed_by` a key file's path, the key itself, or a URL whose key is saved in
//! `/etc/apt/keyrings/<slug>.asc|gpg`; or absent (the file and its key removed). Like
//! ansible-core it does not update the package lists (`apt: update_cache` does). Rewriting or
//! removing a source that exists is destructive: its file is backed up first.

use async_trait::async_trait;
use documented::Documented;
use serde_json::{json, Value as Json};

use crate::modules::support::write::{plan_write_over, WriteSpec};
use crate::modules::{opt, req, ArgSpec, Kind, Module, Plan, StepCtx, StepError};
use crate::transport::{quote, Cmd};

/// `deb822_repository`: an APT repository as a deb822 `.sources` file (and its signing key),
/// present or absent.
///
/// Returns: `repo`, `dest`, `key_filename`, `state`.
///
/// Check mode: shows the diff of the `.sources` file; writes nothing.
#[derive(Documented)]
pub struct Deb822Repository;

const BOOLS: &[&str] = &["allow_downgrade_to_insecure", "allow_insecure", "allow_weak", "by_hash", "check_date", "check_valid_until", "enabled", "pdiffs", "trusted"];
const LISTS: &[&str] = &["architectures", "components", "languages", "suites", "targets", "types", "uris"];
const STRS: &[&str] = &["inrelease_path", "name", "signed_by"];

const SPEC: &[ArgSpec] = &[
    req("name", Kind::Str).doc("The repository's name (its `.sources` file name)."),
    opt("allow_downgrade_to_insecure", Kind::Bool).doc("`Allow-Downgrade-To-Insecure`."),
    opt("allow_insecure", Kind::Bool).doc("`Allow-Insecure`."),
    opt("allow_weak", Kind::Bool).doc("`Allow-Weak`."),
    opt("architectures", Kind::Any).doc("`Architectures`."),
    opt("by_hash", Kind::Bool).doc("`By-Hash`."),
    opt("check_date", Kind::Bool).doc("`Check-Date`."),
    opt("check_valid_until", Kind::Bool).doc("`Check-Valid-Until`."),
    opt("components", Kind::Any).doc("`Components`."),
    opt("date_max_future", Kind::Any).doc("`Date-Max-Future`."),
    opt("enabled", Kind::Bool).doc("`Enabled`."),
    opt("inrelease_path", Kind::Str).doc("`InRelease-Path`."),
    opt("languages", Kind::Any).doc("`Languages`."),
    opt("pdiffs", Kind::Bool).doc("`PDiffs`."),
    opt("signed_by", Kind::Str).doc("`Signed-By`: a key, a key file, or a URL to download one from."),
    opt("suites", Kind::Any).doc("`Suites`."),
    opt("targets", Kind::Any).doc("`Targets`."),
    opt("trusted", Kind::Bool).doc("`Trusted`."),
    opt("types", Kind::Any).default("[deb]").doc("`Types` (`deb`, `deb-src`)."),
    opt("uris", Kind::Any).doc("`URIs`."),
    opt("mode", Kind::Any).default("0644").doc("The mode of the `.sources` file."),
    opt("state", Kind::Str).default("present").doc("`present` or `absent`."),
    opt("install_python_debian", Kind::Bool).default("false").doc("Accepted for Ansible; recover needs no python-debian."),
];

/// Python's `str.title()`.
fn title(s: &str) -> String {
    let mut out = String::new();
    let mut prev_letter = false;
    for c in s.chars() {
        if c.is_alphabetic() {
            out.extend(if prev_letter { c.to_lowercase().collect::<Vec<_>>() } else { c.to_uppercase().collect() });
            prev_letter = true;
        } else {
            out.push(c);
            prev_letter = false;
        }
    }
    out
}

fn field_name(k: &str) -> String {
    match k {
        "name" => "X-Repolib-Name".into(),
        "uris" => "URIs".into(),
        other => title(&other.replace('_', "-")),
    }
}

/// ansible-core's `format_multiline`: a value of several lines, each indented, blank ones `.`.
fn multiline(v: &str) -> String {
    let lines: Vec<String> = v.trim().lines().map(|l| if l.trim().is_empty() { ".".to_string() } else { l.trim().to_string() }).collect();
    format!("\n{}", lines.iter().map(|l| format!("    {l}")).collect::<Vec<_>>().join("\n"))
}

fn list_of(v: &Json) -> Vec<String> {
    match v {
        Json::Array(a) => a.iter().map(|x| x.as_str().map(str::to_string).unwrap_or_else(|| x.to_string())).collect(),
        Json::String(s) => s.split(',').map(|x| x.trim().to_string()).collect(),
        other => vec![other.to_string()],
    }
}

#[async_trait]
impl Module for Deb822Repository {
    fn name(&self) -> &'static str {
        "deb822_repository"
    }
    fn doc(&self) -> &'static str {
        Self::DOCS
    }
    fn spec(&self) -> &'static [ArgSpec] {
        SPEC
    }
    async fn plan(&self, ctx: &StepCtx<'_>, args: &Json) -> Result<Plan, StepError> {
        let Json::Object(a) = args else { return Err(StepError::failed("deb822_repository: needs a mapping of arguments")) };
        let a: serde_json::Map<String, Json> = a.iter().filter(|(_, v)| v.as_str() != Some(crate::template::OMIT) && !v.is_null()).map(|(k, v)| (k.clone(), v.clone())).collect();
        let name = a.get("name").and_then(Json::as_str).ok_or_else(|| StepError::failed("deb822_repository: missing required arguments: name"))?.to_string();
        let state = a.get("state").and_then(Json::as_str).unwrap_or("present").to_string();
        if !["present", "absent"].contains(&state.as_str()) {
            return Err(StepError::failed(format!("value of state must be one of: present, absent, got: {state}")));
        }
        let slug = {
            let s = regex::Regex::new(r"[_\s]+").unwrap().replace_all(&name.to_lowercase(), "-").into_owned();
            regex::Regex::new(r"[^a-z0-9-]+").unwrap().replace_all(&s, "").into_owned()
        };
        let dest = format!("/etc/apt/sources.list.d/{slug}.sources");
        let key_file = |ext: &str| format!("/etc/apt/keyrings/{slug}.{ext}");
        let mut plan = Plan::ok();
        if state == "absent" {
            let mut gone = Vec::new();
            for p in [dest.clone(), key_file("asc"), key_file("gpg")] {
                if ctx.run(Cmd::argv(["test", "-e", &p])).await?.rc == 0 {
                    gone.push(p);
                }
            }
            plan.result.insert("repo".into(), Json::Null);
            plan.result.insert("dest".into(), json!(dest));
            plan.result.insert("key_filename".into(), json!(key_file("gpg")));
            if !gone.is_empty() {
                plan.changes.push(format!("remove {}", gone.join(", ")));
                plan.commands.push(Cmd::shell(format!("rm -f -- {}", gone.iter().map(|p| quote::quote(p)).collect::<Vec<_>>().join(" "))));
                plan.destructive = Some(crate::safety::Destructive { reason: format!("removes the APT source {dest}"), paths: gone, ..Default::default() });
            }
            return Ok(plan);
        }
        for t in a.get("types").map(list_of).unwrap_or_default() {
            if !["deb", "deb-src"].contains(&t.as_str()) {
                return Err(StepError::failed(format!("value of types must be one or more of: deb, deb-src. Got no match for: {t}")));
            }
        }
        let mode = match a.get("mode") {
            None => 0o644,
            Some(Json::Number(n)) => n.as_u64().unwrap_or(0o644) as u32,
            Some(Json::String(s)) => u32::from_str_radix(s.trim(), 8).map_err(|_| StepError::failed(format!("mode must be in octal form, got {s:?}")))?,
            Some(other) => return Err(StepError::failed(format!("mode must be in octal form, got {other}"))),
        };
        let mut fields: Vec<(String, String)> = Vec::new();
        let mut keys: Vec<&str> = BOOLS.iter().chain(LISTS).chain(STRS).copied().chain(["date_max_future"]).collect();
        keys.sort();
        let mut key_filename: Option<String> = None;
        for k in keys {
            let v = match (a.get(k), k) {
                (Some(v), _) => v.clone(),
                (None, "types") => json!(["deb"]),
                (None, _) => continue,
            };
            let mut value = if BOOLS.contains(&k) {
                let b = crate::modules::de::bool_value(&v).ok_or_else(|| StepError::failed(format!("argument '{k}' is of type {v} and we were unable to convert to bool")))?;
                if b { "yes".into() } else { "no".into() }
            } else if LISTS.contains(&k) {
                list_of(&v).join(" ")
            } else if k == "date_max_future" {
                match &v {
                    Json::Number(n) => n.to_string(),
                    Json::String(s) => s.trim().parse::<i64>().map(|n| n.to_string()).map_err(|_| StepError::failed(format!("argument 'date_max_future' is not an integer: {s:?}")))?,
                    other => return Err(StepError::failed(format!("argument 'date_max_future' is not an integer: {other}"))),
                }
            } else {
                v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())
            };
            if k == "signed_by" {
                value = self.signed_by(ctx, &value, &slug, &mut plan, &mut key_filename).await?;
            }
            if value.contains('\n') {
                value = multiline(&value);
            }
            fields.push((field_name(k), value));
        }
        let repo: String = fields.iter().map(|(k, v)| if v.is_empty() || v.starts_with('\n') { format!("{k}:{v}\n") } else { format!("{k}: {v}\n") }).collect();
        plan.result.insert("repo".into(), json!(repo));
        plan.result.insert("dest".into(), json!(dest));
        plan.result.insert("key_filename".into(), json!(key_filename));
        let current = ctx.stat_read(&dest).await?;
        let spec = WriteSpec { dest: dest.clone(), content: repo.into_bytes(), mode: Some(mode), owner: None, group: None, validate: None, validate_in_place: false, backup: None };
        let w = plan_write_over(ctx, spec, current)?;
        plan.changes.extend(w.changes);
        plan.commands.extend(w.commands);
        match (&mut plan.destructive, w.destructive) {
            (Some(d), Some(w)) => {
                d.paths.extend(w.paths);
                d.reason = format!("{}; {}", d.reason, w.reason);
            }
            (d @ None, w) => *d = w,
            (Some(_), None) => {}
        }
        Ok(plan)
    }
}

impl Deb822Repository {
    /// `write_signed_by_key`: a path that is a file stays as it is; a URL's key is fetched and
    /// kept in /etc/apt/keyrings; anything else is the key itself, written in the source.
    async fn signed_by(&self, ctx: &StepCtx<'_>, value: &str, slug: &str, plan: &mut Plan, key_filename: &mut Option<String>) -> Result<String, StepError> {
        if ctx.run(Cmd::argv(["test", "-f", value])).await?.rc == 0 {
            *key_filename = Some(value.to_string());
            return Ok(value.to_string());
        }
        let is_url = regex::Regex::new(r"^[A-Za-z][A-Za-z0-9+.-]*://").unwrap().is_match(value);
        if !is_url {
            return Ok(value.to_string());
        }
        let fetch = format!(
            "python3 -c 'import sys, urllib.request; sys.stdout.buffer.write(urllib.request.urlopen(sys.argv[1], timeout=30).read())' {} 2>/dev/null || curl -fsSL {} 2>/dev/null || wget -qO- {}",
            quote::quote(value), quote::quote(value), quote::quote(value)
        );
        let out = ctx.run(Cmd::shell(fetch)).await?;
        if out.rc != 0 {
            return Err(StepError::failed(format!("Could not fetch signed_by key: {value}: {}", out.stderr_str().trim())));
        }
        if out.stdout.is_empty() {
            return Ok(value.to_string());
        }
        let armored = String::from_utf8_lossy(&out.stdout).contains("-----BEGIN PGP PUBLIC KEY BLOCK-----");
        let file = format!("/etc/apt/keyrings/{slug}.{}", if armored { "asc" } else { "gpg" });
        let current = ctx.stat_read(&file).await?;
        if current.1.as_deref() != Some(&out.stdout[..]) || current.0.as_ref().is_some_and(|s| s.mode != 0o644) {
            plan.changes.push(format!("save the key of {value} as {file}"));
            plan.commands.push(Cmd::shell(format!("install -d -m 0755 -o root -g root /etc/apt/keyrings && cat > {f} && chmod 0644 {f}", f = quote::quote(&file))).stdin(out.stdout.clone()));
            if current.1.is_some() {
                plan.destructive = Some(crate::safety::Destructive { reason: format!("overwrites the key {file}"), paths: vec![file.clone()], ..Default::default() });
            }
        }
        *key_filename = Some(file.clone());
        Ok(file)
    }
}
