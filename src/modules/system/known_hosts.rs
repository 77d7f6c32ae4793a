//! `known_hosts`: one host's key in a known_hosts file, present (added, or replacing the key
//! of the same type) or absent, found with the host's own `ssh-keygen -F` as ansible-core's
//! module finds it (hashed entries, `[host]:port`, `@cert-authority` and `@revoke` lines),
//! with its diff and `hash_host`. The file is written through [`crate::modules::write`]; removing or
//! replacing a key of a file that exists is an overwrite for the safety engine.

use async_trait::async_trait;
use documented::Documented;
use serde::Deserialize;
use serde_json::{json, Value as Json};

use crate::modules::support::write::{plan_write_over, WriteSpec};
use crate::modules::{de, opt, req, typed, ArgSpec, Kind, Module, Plan, StepCtx, StepError};
use crate::transport::{quote, Cmd};

/// `known_hosts`: a host's key in an SSH known_hosts file, present (replacing an older key) or
/// absent.
///
/// Returns: `changed`, and the diff of the file.
///
/// Check mode: reads the file and shows the diff; writes nothing.
#[derive(Documented)]
pub struct KnownHosts;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(alias = "host")]
    name: String,
    key: Option<String>,
    path: Option<String>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    hash_host: Option<bool>,
    state: Option<String>,
}

/// A key line split as ansible-core's `normalize_known_hosts_key` splits it.
#[derive(Debug, PartialEq, Clone)]
struct KeyLine {
    options: Option<String>,
    host: String,
    kind: String,
    key: String,
}

fn normalize(line: &str) -> Option<KeyLine> {
    let k: Vec<&str> = line.split_whitespace().collect();
    if k.first()?.starts_with('@') {
        Some(KeyLine { options: Some(k[0].to_string()), host: k.get(1)?.to_string(), kind: k.get(2)?.to_string(), key: k.get(3)?.to_string() })
    } else {
        Some(KeyLine { options: None, host: k[0].to_string(), kind: k.get(1)?.to_string(), key: k.get(2)?.to_string() })
    }
}

/// `|1|salt|hmac`: the host name hashed as `ssh-keygen -H` does (HMAC-SHA1, a random salt).
fn hash_host_key(host: &str, key: &str) -> String {
    use base64::Engine;
    use hmac::Mac;
    let salt: Vec<u8> = uuid::Uuid::new_v4().as_bytes().iter().chain(uuid::Uuid::new_v4().as_bytes()).take(20).copied().collect();
    let mut mac = <hmac::Hmac<sha1::Sha1> as Mac>::new_from_slice(&salt).expect("any key length");
    mac.update(host.as_bytes());
    let b64 = base64::engine::general_purpose::STANDARD;
    let hashed = format!("|1|{}|{}", b64.encode(&salt), b64.encode(mac.finalize().into_bytes()));
    let mut parts: Vec<String> = key.split_whitespace().map(str::to_string).collect();
    let i = usize::from(parts.first().is_some_and(|p| p.starts_with('@')));
    if i < parts.len() {
        parts[i] = hashed;
    }
    parts.join(" ")
}

#[async_trait]
impl Module for KnownHosts {
    fn name(&self) -> &'static str {
        "known_hosts"
    }
    fn doc(&self) -> &'static str {
        Self::DOCS
    }
    fn spec(&self) -> &'static [ArgSpec] {
        const S: &[ArgSpec] = &[
            req("name", Kind::Str).aliases(&["host"]).doc("The host (as it appears in the file)."),
            opt("key", Kind::Str).doc("The key line (`host ssh-ed25519 AAAA...`); required with `state: present`."),
            opt("path", Kind::Str).default("~/.ssh/known_hosts").doc("The known_hosts file."),
            opt("hash_host", Kind::Bool).default("false").doc("Hash the host name in the file."),
            opt("state", Kind::Str).default("present").doc("`present` or `absent`."),
        ];
        S
    }
    async fn plan(&self, ctx: &StepCtx<'_>, args: &Json) -> Result<Plan, StepError> {
        let a: Args = typed("known_hosts", args)?;
        let host = a.name.to_lowercase();
        let state = a.state.clone().unwrap_or_else(|| "present".into());
        if !["present", "absent"].contains(&state.as_str()) {
            return Err(StepError::failed(format!("value of state must be one of: absent, present, got: {state}")));
        }
        let path = a.path.clone().unwrap_or_else(|| "~/.ssh/known_hosts".into());
        let path = if let Some(rest) = path.strip_prefix('~') {
            let home = ctx.run(Cmd::shell("printf %s \"$HOME\"")).await?.stdout_str();
            format!("{home}{rest}")
        } else {
            path
        };
        let mut key = a.key.clone().filter(|k| !k.is_empty());
        if key.is_none() && state != "absent" {
            return Err(StepError::failed("No key specified when adding a host"));
        }
        if let (Some(k), true) = (&key, a.hash_host.unwrap_or(false)) {
            key = Some(hash_host_key(&host, k));
        }
        if let Some(k) = &mut key {
            if !k.ends_with('\n') {
                k.push('\n');
            }
        }
        let h = quote::quote(&host);
        if let Some(k) = &key {
            if regex::Regex::new(r"\S+(\s+)?,(\s+)?").unwrap().is_match(&host) {
                return Err(StepError::failed("Comma separated list of names is not supported. Please pass a single name to lookup in the known_hosts file."));
            }
            let out = ctx.run(Cmd::shell(format!("t=$(mktemp) && cat > \"$t\" && ssh-keygen -F {h} -f \"$t\"; rc=$?; rm -f \"$t\"; exit $rc")).stdin(k.clone().into_bytes())).await?;
            if out.rc == 127 {
                return Err(StepError::failed("Failed to find required executable \"ssh-keygen\""));
            }
            if out.stdout.is_empty() {
                return Err(StepError::failed("Host parameter does not match hashed host field in supplied key"));
            }
        }
        // search_for_host_key
        let current = ctx.stat_read(&path).await?;
        let exists = current.0.is_some();
        let (mut found, mut replace_or_add, mut found_line) = (false, false, None::<usize>);
        if exists {
            let out = ctx.run(Cmd::shell(format!("ssh-keygen -F {h} -f {}", quote::quote(&path)))).await?;
            let (so, se) = (out.stdout_str(), out.stderr_str());
            if so.is_empty() && se.is_empty() && (out.rc == 0 || out.rc == 1) {
                // not found
            } else if out.rc != 0 {
                return Err(StepError::failed(format!("ssh-keygen failed (rc={}, stdout='{so}',stderr='{se}')", out.rc)));
            } else if key.is_none() {
                found = true;
            } else {
                found = true;
                replace_or_add = true;
                let mut new_key = normalize(key.as_deref().unwrap_or_default()).ok_or_else(|| StepError::failed("the key is not a known_hosts line (host type key)"))?;
                let line_re = regex::Regex::new(r"found: line (\d+)").unwrap();
                let mut line_no = None;
                for l in so.split('\n') {
                    if l.is_empty() {
                        continue;
                    }
                    if l.starts_with('#') {
                        line_no = line_re.captures(l).and_then(|c| c[1].parse().ok());
                        continue;
                    }
                    let Some(found_key) = normalize(l) else { continue };
                    let special = found_key.options.as_deref().is_some_and(|o| o.starts_with("@cert-authority") || o.starts_with("@revoke"));
                    if special {
                        if new_key == found_key {
                            replace_or_add = false;
                            found_line = line_no;
                            break;
                        }
                    } else {
                        if new_key.host.starts_with("|1|") && found_key.host.starts_with("|1|") {
                            new_key.host = found_key.host.clone();
                        }
                        if new_key == found_key {
                            replace_or_add = false;
                            found_line = line_no;
                            break;
                        } else if new_key.kind == found_key.kind {
                            found_line = line_no;
                            break;
                        }
                    }
                }
            }
        }
        // compute_diff: the file without the found line, the key added.
        let before = String::from_utf8_lossy(current.1.as_deref().unwrap_or_default()).into_owned();
        let mut lines: Vec<&str> = before.split_inclusive('\n').collect();
        if let Some(n) = found_line.filter(|n| (replace_or_add || state == "absent") && *n >= 1 && *n <= lines.len()) {
            lines.remove(n - 1);
        }
        let mut after: String = lines.concat();
        if state == "present" && (replace_or_add || found_line.is_none()) {
            after.push_str(key.as_deref().unwrap_or_default());
        }
        let mut plan = Plan::ok();
        for (k, v) in [("name", json!(a.name)), ("key", json!(a.key)), ("path", json!(path)), ("hash_host", json!(a.hash_host.unwrap_or(false))), ("state", json!(state))] {
            plan.result.insert(k.into(), v);
        }
        // ansible-core's known_hosts returns its diff whatever the diff mode.
        plan.result.insert("diff".into(), json!({"before_header": if exists { path.as_str() } else { "/dev/null" }, "after_header": path, "before": before, "after": after}));
        if state == "absent" && found_line.is_none() && key.is_some() {
            return Ok(plan);
        }
        let diff = crate::modules::FileDiff { path: path.clone(), before: exists.then(|| before.clone().into_bytes()), after: Some(after.clone().into_bytes()), mode: None, prepared: None };
        if found && key.is_none() && state == "absent" {
            // Every key of the host: ssh-keygen -R (which keeps the old file as PATH.old).
            plan.changes.push(format!("remove every key of {host} from {path}"));
            plan.commands.push(Cmd::shell(format!("ssh-keygen -R {h} -f {}", quote::quote(&path))));
            plan.destructive = Some(crate::safety::Destructive { reason: format!("removes the keys of {host} from {path}"), paths: vec![path.clone()], ..Default::default() });
            plan.diff = Some(diff);
            return Ok(plan);
        }
        if replace_or_add || found != (state == "present") {
            let spec = WriteSpec { dest: path.clone(), content: after.into_bytes(), mode: None, owner: None, group: None, validate: None, validate_in_place: false, backup: None };
            let w = plan_write_over(ctx, spec, current)?;
            plan.commands = w.commands;
            plan.destructive = w.destructive;
            plan.changes.push(format!("{} the {} key of {host} in {path}", if state == "present" { "set" } else { "remove" }, normalize(key.as_deref().unwrap_or_default()).map(|k| k.kind).unwrap_or_default()));
            plan.diff = Some(diff);
        }
        Ok(plan)
    }
}
