//! `apt_key`: a key in APT's keyring, added (from a file, inline `data`, a `url`, or a
//! `keyserver`) or removed, with the host's `apt-key` and `gpg`, as ansible-core's (deprecated)
//! module does: the key id taken from the key with `gpg --with-colons`, compared with
//! `apt-key adv --list-public-keys --keyid-format=long`, `before`/`after` registered. Removing
//! a key is destructive: the keyring it is in is backed up (APT stops trusting the repository).

use async_trait::async_trait;
use documented::Documented;
use serde::Deserialize;
use serde_json::{json, Value as Json};

use crate::error::{SResult, SourceError};
use crate::modules::{de, opt, typed, ArgSpec, Kind, Module, Outcome, Plan, StepCtx, StepError};
use crate::playbook::Task;
use crate::transport::{quote, Cmd};

/// `apt_key`: a key in an APT keyring, added (from `url`, `data`, `file` or a keyserver) or
/// removed.
///
/// Returns: `fp`, `id`, `key_id`, `short_id`, `before`, `after`.
///
/// Check mode: reads the keyring and reports whether it would change; changes nothing.
#[derive(Documented)]
pub struct AptKey;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    id: Option<String>,
    url: Option<String>,
    data: Option<String>,
    file: Option<String>,
    keyring: Option<String>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    validate_certs: Option<bool>,
    keyserver: Option<String>,
    state: Option<String>,
}

const SPEC: &[ArgSpec] = &[
    opt("id", Kind::Str).doc("The key's id (long or short)."),
    opt("url", Kind::Str).doc("Where to download the key."),
    opt("data", Kind::Str).doc("The key itself (armored)."),
    opt("file", Kind::Str).doc("A key file on the host."),
    opt("keyring", Kind::Str).doc("The keyring file to add to (`/etc/apt/trusted.gpg` otherwise)."),
    opt("validate_certs", Kind::Bool).default("true").doc("Check the certificate of `url`."),
    opt("keyserver", Kind::Str).doc("A keyserver to fetch `id` from."),
    opt("state", Kind::Str).default("present").doc("`present` or `absent`."),
];

const LANG: &str = "LANG=C LC_ALL=C LC_MESSAGES=C LANGUAGE=C ";

/// `parse_output_for_keys`: the key ids of `pub`/`sub` lines that have not expired.
fn keys_of(out: &str, short: bool) -> Vec<String> {
    let mut found = Vec::new();
    for line in out.split('\n') {
        if !(line.starts_with("pub") || line.starts_with("sub")) || line.contains("expired") {
            continue;
        }
        let code = line.split_whitespace().nth(1).and_then(|c| c.split_once('/').map(|(_, r)| r.to_string())).or_else(|| line.split(':').nth(4).map(str::to_string));
        if let Some(c) = code {
            found.push(c);
        }
    }
    if short {
        found = found.into_iter().map(|k| k[k.len().saturating_sub(8)..].to_string()).collect();
    }
    found
}

/// `parse_key_id`: (short id, fingerprint part, the id) or why it is not one.
fn parse_key_id(id: &str) -> Result<(String, String, String), String> {
    let k = id.to_uppercase();
    let k = k.strip_prefix("0X").unwrap_or(&k).to_string();
    if k.is_empty() || !k.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err("Invalid key_id".into());
    }
    if k.len() != 8 && k.len() != 16 && k.len() <= 16 {
        return Err("Invalid key_id".into());
    }
    let short = k[k.len() - 8..].to_string();
    let fp = if k.len() > 16 { k[k.len() - 16..].to_string() } else { k.clone() };
    Ok((short, fp, k))
}

#[async_trait]
impl Module for AptKey {
    fn name(&self) -> &'static str {
        "apt_key"
    }
    fn doc(&self) -> &'static str {
        Self::DOCS
    }
    fn spec(&self) -> &'static [ArgSpec] {
        SPEC
    }
    fn validate(&self, task: &Task) -> SResult<()> {
        let given: Vec<&str> = ["data", "file", "keyserver", "url"].into_iter().filter(|k| crate::modules::certainly_given(task, k)).collect();
        if given.len() > 1 {
            return Err(SourceError::new(task.arg_span(given[1]), format!("apt_key: parameters are mutually exclusive: data|file|keyserver|url (got {})", given.join(", "))));
        }
        Ok(())
    }
    async fn plan(&self, ctx: &StepCtx<'_>, args: &Json) -> Result<Plan, StepError> {
        crate::modules::exclusive("apt_key", args, &[("data", "file"), ("data", "keyserver"), ("data", "url"), ("file", "keyserver"), ("file", "url"), ("keyserver", "url")])?;
        let a: Args = typed("apt_key", args)?;
        let state = a.state.clone().unwrap_or_else(|| "present".into());
        if !["present", "absent"].contains(&state.as_str()) {
            return Err(StepError::failed(format!("value of state must be one of: absent, present, got: {state}")));
        }
        let found = ctx.run(Cmd::shell("command -v apt-key && command -v gpg")).await?;
        if found.rc != 0 {
            return Err(StepError::failed("Failed to find required executable \"apt-key\" or \"gpg\". Apt-key has been deprecated. See the deb822_repository as an alternative."));
        }
        let mut data: Option<Vec<u8>> = a.data.clone().map(String::into_bytes);
        let mut key_id = a.id.clone().filter(|i| !i.is_empty());
        if key_id.is_none() {
            if a.keyserver.is_some() {
                return Err(StepError::failed("Missing key_id, required with keyserver."));
            }
            if let Some(u) = &a.url {
                let insecure = if a.validate_certs == Some(false) { "ctx = ssl._create_unverified_context()" } else { "ctx = None" };
                let out = ctx.run(Cmd::shell(format!("python3 -c 'import ssl, sys, urllib.request\n{insecure}\nsys.stdout.buffer.write(urllib.request.urlopen(sys.argv[1], timeout=30, context=ctx).read())' {}", quote::quote(u)))).await?;
                if out.rc != 0 {
                    return Err(StepError::failed(format!("Error getting key id from url: {u}")));
                }
                data = Some(out.stdout);
            }
            let out = match (&a.file, &data) {
                (Some(f), _) => ctx.run(Cmd::shell(format!("{LANG}gpg --with-colons {}", quote::quote(f)))).await?,
                (None, Some(d)) => ctx.run(Cmd::shell(format!("{LANG}gpg --with-colons -")).stdin(d.clone())).await?,
                (None, None) => return Err(StepError::failed("one of id, data, file or url is needed")),
            };
            if out.rc != 0 {
                return Err(StepError::Failed { msg: format!("Unable to extract key from '{}'", if a.file.is_some() { a.file.clone().unwrap_or_default() } else { "inline data".into() }), result: json!({"stdout": out.stdout_str(), "stderr": out.stderr_str()}) });
            }
            key_id = keys_of(&out.stdout_str(), false).into_iter().next();
        }
        let mut result = serde_json::Map::new();
        result.insert("id".into(), json!(key_id));
        let (short, fp, full) = parse_key_id(key_id.as_deref().unwrap_or_default()).map_err(|m| StepError::Failed { msg: m, result: Json::Object(result.clone()) })?;
        result.insert("short_id".into(), json!(short));
        result.insert("fp".into(), json!(fp));
        result.insert("key_id".into(), json!(full));
        let short_format = full.len() == 8;
        let ring = a.keyring.as_ref().map(|k| format!("--keyring {} ", quote::quote(k))).unwrap_or_default();
        let list = format!("{LANG}apt-key {ring}adv --list-public-keys --keyid-format=long");
        let out = ctx.run(Cmd::shell(format!("{list} 2>/dev/null"))).await?;
        if out.rc != 0 {
            return Err(StepError::failed("Unable to list public keys"));
        }
        let keys = keys_of(&out.stdout_str(), short_format);
        result.insert("before".into(), json!(keys));
        let mut plan = Plan { result, ..Plan::ok() };
        let have = if short_format { keys.contains(&short) } else { keys.contains(&fp) };
        let cmd = if state == "present" && !have {
            plan.changes.push(format!("add the key {full} to APT's keyring"));
            match (&a.file, &a.keyserver, &data) {
                (Some(f), _, _) => Cmd::shell(format!("apt-key {ring}add {} 2>&1", quote::quote(f))),
                (None, Some(ks), _) => Cmd::shell(format!("{LANG}apt-key {ring}adv --no-tty --keyserver {} --recv {} 2>&1", quote::quote(ks), quote::quote(&full))),
                (None, None, Some(d)) => Cmd::shell(format!("apt-key {ring}add - 2>&1")).stdin(d.clone()),
                _ => return Err(StepError::failed("No key to add ... how did i get here?!?!")),
            }
        } else if state == "absent" && keys.contains(&fp) {
            plan.changes.push(format!("remove the key {full} from APT's keyring"));
            let rings = a.keyring.clone().map(|k| vec![k]).unwrap_or_else(|| vec!["/etc/apt/trusted.gpg".into(), "/etc/apt/trusted.gpg.d".into()]);
            plan.destructive = Some(crate::safety::Destructive { reason: format!("removes the APT key {full} (its repositories are no longer trusted)"), paths: rings, ..Default::default() });
            Cmd::shell(format!("apt-key {ring}del {} 2>&1", quote::quote(&short)))
        } else {
            return Ok(plan);
        };
        if !ctx.check {
            plan.commands.push(cmd);
            plan.result.insert("_list".into(), json!(list));
            plan.result.insert("_want".into(), json!({"present": state == "present", "short": short_format, "id": if short_format { short } else { fp }}));
        }
        Ok(plan)
    }
    async fn apply(&self, ctx: &StepCtx<'_>, mut plan: Plan) -> Result<Outcome, StepError> {
        let list = plan.result.remove("_list").and_then(|l| l.as_str().map(str::to_string)).unwrap_or_default();
        let want = plan.result.remove("_want").unwrap_or(json!({}));
        let mut result = plan.result;
        for cmd in plan.commands {
            let shown = cmd.display();
            let out = ctx.run(cmd).await?;
            if out.rc != 0 {
                return Err(StepError::Failed { msg: format!("Unable to {}: {}", if want["present"] == json!(true) { "add the key" } else { "remove the key" }, out.stdout_str().trim()), result: json!({"cmd": shown, "rc": out.rc}) });
            }
        }
        let out = ctx.run(Cmd::shell(format!("{list} 2>/dev/null"))).await?;
        let keys = keys_of(&out.stdout_str(), want["short"] == json!(true));
        let id = want["id"].as_str().unwrap_or_default().to_string();
        result.insert("after".into(), json!(keys));
        let present = keys.contains(&id);
        if want["present"] == json!(true) && !present {
            return Err(StepError::Failed { msg: "apt-key did not return an error, but failed to add the key (check that the id is correct and *not* a subkey)".into(), result: Json::Object(result) });
        }
        if want["present"] == json!(false) && present {
            return Err(StepError::Failed { msg: "apt-key did not return an error, but the key was not removed (check that the id is correct and *not* a subkey)".into(), result: Json::Object(result) });
        }
        Ok(Outcome { changed: true, result })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids_and_listings_as_ansible_core_reads_them() {
        assert_eq!(parse_key_id("0x742721d7").unwrap().0, "742721D7");
        assert_eq!(parse_key_id("43709FA402BEB94507856A58BB13115A742721D7").unwrap().1, "BB13115A742721D7");
        assert!(parse_key_id("12345").is_err());
        let listing = "pub   ed25519/BB13115A742721D7 2026-12-02 [SC]\nuid  x\nsub   cv25519/0123456789ABCDEF 2026-12-02 [E] [expired: 2027-01-01]\n";
        assert_eq!(keys_of(listing, false), ["BB13115A742721D7"]);
        assert_eq!(keys_of("pub:u:255:22:BB13115A742721D7:1796217977:::u:::scSC:", true), ["742721D7"]);
    }
}
