//! `apt_repository`: a `deb`/`deb-src` line present (enabled where it is already written,
//! else added to `sources.list.d/<name>.list`) or absent, with ansible-core's parsing of the
//! sources files (a `#` disables a line, spaces are normalized, a trailing `# ...` is a
//! comment) and its file names; then `apt-get update` (`update_cache`, on by default), the
//! files put back as they were if that fails. Rewriting a sources file that exists is an
//! overwrite for the safety engine; removing one, a delete.

use async_trait::async_trait;
use documented::Documented;
use serde::Deserialize;
use serde_json::{json, Value as Json};

use crate::modules::{de, opt, req, typed, ArgSpec, Kind, Module, Outcome, Plan, StepCtx, StepError};
use crate::transport::{quote, Cmd};

/// `apt_repository`: an APT source line added to (or removed from) a file in `sources.list.d`, and
/// the cache updated after a change.
///
/// Returns: `repo`, `state`, `sources_added`, `sources_removed`.
///
/// Check mode: shows the diff of the sources file; changes nothing.
#[derive(Documented)]
pub struct AptRepository;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    repo: String,
    state: Option<String>,
    #[serde(default, deserialize_with = "de::mode")]
    mode: Option<u32>,
    #[serde(default, alias = "update-cache", deserialize_with = "de::bool_loose")]
    update_cache: Option<bool>,
    #[serde(default, deserialize_with = "de::u64_loose")]
    update_cache_retries: Option<u64>,
    #[serde(default, deserialize_with = "de::u64_loose")]
    update_cache_retry_max_delay: Option<u64>,
    filename: Option<String>,
    codename: Option<String>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    install_python_apt: Option<bool>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    validate_certs: Option<bool>,
}

const SPEC: &[ArgSpec] = &[
    req("repo", Kind::Str).doc("The source line (`deb http://... suite main`)."),
    opt("state", Kind::Str).default("present").doc("`present` or `absent`."),
    opt("mode", Kind::Any).default("0644").doc("The mode of the sources file."),
    opt("update_cache", Kind::Bool).aliases(&["update-cache"]).default("true").doc("Run `apt-get update` after a change."),
    opt("update_cache_retries", Kind::Int).default("5").doc("How many times to try the update."),
    opt("update_cache_retry_max_delay", Kind::Int).default("12").doc("The longest wait between tries, in seconds."),
    opt("filename", Kind::Str).doc("The sources file's name in `sources.list.d` (without `.list`)."),
    opt("codename", Kind::Str).doc("The release codename for a PPA."),
    opt("install_python_apt", Kind::Bool).default("true").doc("Accepted for Ansible; recover needs no python-apt."),
    opt("validate_certs", Kind::Bool).default("true").doc("Check certificates when fetching PPA keys."),
];

const SOURCES: &str = "/etc/apt/sources.list";
const PARTS: &str = "/etc/apt/sources.list.d";

/// One line of a sources file: (valid, enabled, source, comment).
type Line = (bool, bool, String, String);

/// ansible-core's `_parse`.
pub fn parse_line(line: &str) -> Line {
    let mut line = line.trim().to_string();
    let mut enabled = true;
    if let Some(rest) = line.strip_prefix('#') {
        enabled = false;
        line = rest.to_string();
    }
    let mut comment = String::new();
    if let Some(i) = line.find('#').filter(|i| *i > 0) {
        comment = line[i + 1..].trim().to_string();
        line.truncate(i);
    }
    let source = line.trim().to_string();
    let chunks: Vec<&str> = source.split_whitespace().collect();
    if chunks.first().is_some_and(|c| matches!(*c, "deb" | "deb-src")) {
        return (true, enabled, chunks.join(" "), comment);
    }
    (false, enabled, source, comment)
}

fn dump(lines: &[Line]) -> String {
    lines.iter().map(|(_, enabled, source, comment)| {
        let mut s = String::new();
        if !enabled {
            s.push_str("# ");
        }
        s.push_str(source);
        if !comment.is_empty() {
            s.push_str(" # ");
            s.push_str(comment);
        }
        s.push('\n');
        s
    }).collect()
}

/// ansible-core's `_suggest_filename`: the repository's host and path, as words joined by `_`.
pub fn suggest_filename(source: &str) -> String {
    let no_opts = regex::Regex::new(r"\[[^\]]+\]").unwrap().replace_all(source, "").into_owned();
    let no_proto = regex::Regex::new(r"\w+://").unwrap().replace_all(&no_opts, "").into_owned();
    let parts: Vec<&str> = no_proto.split_whitespace().filter(|p| !matches!(*p, "deb" | "deb-src")).collect();
    let first = parts.first().map(|p| p.rsplit_once('@').map_or(*p, |(_, h)| h)).unwrap_or("");
    let cleaned: String = first.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { ' ' }).collect();
    format!("{}.list", cleaned.split_whitespace().collect::<Vec<_>>().join("_"))
}

#[async_trait]
impl Module for AptRepository {
    fn name(&self) -> &'static str {
        "apt_repository"
    }
    fn doc(&self) -> &'static str {
        Self::DOCS
    }
    fn spec(&self) -> &'static [ArgSpec] {
        SPEC
    }
    async fn plan(&self, ctx: &StepCtx<'_>, args: &Json) -> Result<Plan, StepError> {
        let a: Args = typed("apt_repository", args)?;
        let _ = (a.update_cache_retries, a.update_cache_retry_max_delay, a.install_python_apt, a.validate_certs);
        if a.repo.trim().is_empty() {
            return Err(StepError::failed("Please set argument 'repo' to a non-empty value"));
        }
        if a.repo.starts_with("ppa:") || a.codename.is_some() {
            return Err(StepError::failed("apt_repository: PPAs (and codename) are Ubuntu's; recover manages deb lines only"));
        }
        let state = a.state.clone().unwrap_or_else(|| "present".into());
        if !matches!(state.as_str(), "present" | "absent") {
            return Err(StepError::failed(format!("apt_repository: value of state must be one of: absent, present, got: {state}")));
        }
        let out = ctx.run(Cmd::shell(format!("for f in {SOURCES} {PARTS}/*.list; do if [ -f \"$f\" ]; then printf '\\001%s\\n' \"$f\"; cat \"$f\"; fi; done"))).await?;
        let mut files: Vec<(String, Vec<Line>)> = Vec::new();
        for chunk in out.stdout_str().split('\u{1}').filter(|c| !c.is_empty()) {
            let (name, body) = chunk.split_once('\n').unwrap_or((chunk, ""));
            files.push((name.to_string(), body.lines().map(parse_line).collect()));
        }
        let before: std::collections::BTreeMap<String, String> = files.iter().filter(|(_, l)| !l.is_empty()).map(|(n, l)| (n.clone(), dump(l))).collect();
        let (valid, enabled, source, _) = parse_line(&a.repo);
        if !valid || !enabled {
            return Err(StepError::failed(format!("Invalid repository string: {}", a.repo)));
        }
        let mut new_files = Vec::new();
        if state == "present" {
            let mut found = false;
            for (_, lines) in files.iter_mut() {
                for l in lines.iter_mut().filter(|l| l.0 && l.2 == source) {
                    l.1 = true;
                    found = true;
                }
            }
            if !found {
                let name = match &a.filename {
                    Some(f) => format!("{f}.list"),
                    None => suggest_filename(&source),
                };
                let path = if name.contains('/') { name } else { format!("{PARTS}/{name}") };
                match files.iter_mut().find(|(n, _)| *n == path) {
                    Some((_, lines)) => lines.push((true, true, source.clone(), String::new())),
                    None => {
                        new_files.push(path.clone());
                        files.push((path, vec![(true, true, source.clone(), String::new())]));
                    }
                }
            }
        } else {
            for (_, lines) in files.iter_mut() {
                lines.retain(|l| !(l.0 && l.1 && l.2 == source));
            }
        }
        let after: std::collections::BTreeMap<String, String> = files.iter().filter(|(_, l)| !l.is_empty()).map(|(n, l)| (n.clone(), dump(l))).collect();
        let mut plan = Plan::ok();
        plan.result.insert("repo".into(), json!(a.repo));
        plan.result.insert("state".into(), json!(state));
        let added: Vec<&String> = after.keys().filter(|k| !before.contains_key(*k)).collect();
        let removed: Vec<&String> = before.keys().filter(|k| !after.contains_key(*k)).collect();
        plan.result.insert("sources_added".into(), json!(added));
        plan.result.insert("sources_removed".into(), json!(removed));
        if before == after {
            return Ok(plan);
        }
        // The diff ansible-core shows: the files added or removed.
        if let Some(f) = added.first().or(removed.first()) {
            plan.diff = Some(crate::modules::FileDiff { path: (*f).clone(), before: before.get(*f).map(|s| s.clone().into_bytes()), after: after.get(*f).map(|s| s.clone().into_bytes()), mode: None, prepared: None });
        }
        // Write each file that changed (all in one script), delete the emptied ones; with the
        // cache update, put every file back if `apt-get update` fails.
        let mut script = String::from("set -e; b=$(mktemp -d); ");
        let mut over = Vec::new();
        for (name, text) in &before {
            script.push_str(&format!("cp -p {} \"$b\"/$(echo {} | tr / _); ", quote::quote(name), quote::quote(name)));
            if after.get(name) != Some(text) {
                over.push(name.clone());
            }
        }
        for (name, text) in &after {
            if before.get(name) == Some(text) {
                continue;
            }
            let n = quote::quote(name);
            script.push_str(&format!("mkdir -p {}; t=$(mktemp -p {} .recover-XXXXXX); printf '%s' {} > \"$t\"; ", quote::quote(PARTS), quote::quote(name.rsplit_once('/').map_or("/", |(d, _)| d)), quote::quote(text)));
            if new_files.contains(name) {
                script.push_str(&format!("chmod {:o} \"$t\"; ", a.mode.unwrap_or(0o644)));
            } else {
                script.push_str(&format!("chmod --reference={n} \"$t\"; "));
            }
            script.push_str(&format!("mv -f \"$t\" {n}; "));
        }
        for name in &removed {
            script.push_str(&format!("rm -f {}; ", quote::quote(name)));
        }
        if a.update_cache.unwrap_or(true) {
            let restore: String = before.keys().map(|n| format!("cp -p \"$b\"/$(echo {q} | tr / _) {q}; ", q = quote::quote(n))).collect();
            let drop_new: String = new_files.iter().map(|n| format!("rm -f {}; ", quote::quote(n))).collect();
            script.push_str(&format!(
                "if ! o=$(DEBIAN_FRONTEND=noninteractive apt-get update --error-on=any 2>&1); then {restore}{drop_new}echo \"Failed to update apt cache: $o\" >&2; rm -rf \"$b\"; exit 1; fi; "
            ));
        }
        script.push_str("rm -rf \"$b\"");
        plan.changes.push(format!("{} {} ({})", if state == "present" { "add the repository" } else { "remove the repository" }, source, after.keys().chain(removed.iter().copied()).filter(|k| before.get(*k) != after.get(*k)).cloned().collect::<Vec<_>>().join(", ")));
        plan.commands.push(Cmd::shell(script).label(format!("write the apt sources for {source}")));
        if !over.is_empty() {
            plan.destructive = Some(crate::safety::Destructive { reason: format!("rewrites {}", over.join(", ")), paths: over, ..Default::default() });
        }
        Ok(plan)
    }
    async fn apply(&self, ctx: &StepCtx<'_>, plan: Plan) -> Result<Outcome, StepError> {
        let changed = plan.changed();
        let result = plan.result;
        for cmd in plan.commands {
            let out = ctx.run(cmd).await?;
            if out.rc != 0 {
                return Err(StepError::failed(out.stderr_str().trim().to_string()));
            }
        }
        Ok(Outcome { changed, result })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_file_names_as_ansible_core() {
        assert_eq!(parse_line("#deb  http://x/debian  bookworm main # mirror"), (true, false, "deb http://x/debian bookworm main".into(), "mirror".into()));
        assert_eq!(parse_line("").0, false);
        assert_eq!(suggest_filename("deb [arch=amd64] https://download.docker.com/linux/debian bookworm stable"), "download_docker_com_linux_debian.list");
        assert_eq!(suggest_filename("deb [trusted=yes] file:/srv/recover-debs/old ./"), "file_srv_recover_debs_old.list");
    }
}
