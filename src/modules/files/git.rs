//! `git`: a checkout of a repository at a version (a branch, a tag, a commit, or the remote's
//! HEAD), cloned when missing, fetched and switched when it differs, as ansible-core's module
//! does it step by step (`clone`, `fetch`, `switch_version`): the same git commands, the same
//! `before`/`after`, the same refusal of local modifications without `force`, and its
//! `--diff` (`>> Newly checked out SHA`, or `git diff BEFORE AFTER`). The plan reads with
//! `ls-remote`, `rev-parse` and `status`; apply runs the clone or the fetch and checkout.
//! Discarding local modifications (`force: true`) is destructive: the checkout is backed up.

use async_trait::async_trait;
use documented::Documented;
use serde::Deserialize;
use serde_json::{json, Value as Json};

use crate::error::{SResult, SourceError};
use crate::modules::{de, opt, req, typed, ArgSpec, Kind, Module, Outcome, Plan, StepCtx, StepError};
use crate::playbook::Task;
use crate::transport::{quote, Cmd};

/// `git`: a checkout of a repository at a version (a branch, a tag, a commit), cloned when missing,
/// fetched and switched when it differs; local modifications refused without `force`.
///
/// Returns: `before`, `after` (commit ids), `remote_url_changed`, `warnings`.
///
/// Check mode: reads the checkout and the remote and reports whether it would change; fetches
/// nothing into the checkout.
#[derive(Documented)]
pub struct Git;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(alias = "name")]
    repo: String,
    dest: Option<String>,
    version: Option<Json>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    force: Option<bool>,
    depth: Option<Json>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    clone: Option<bool>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    update: Option<bool>,
    remote: Option<String>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    bare: Option<bool>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    single_branch: Option<bool>,
    umask: Option<Json>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    recursive: Option<bool>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    accept_hostkey: Option<bool>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    accept_newhostkey: Option<bool>,
    ssh_opts: Option<String>,
    key_file: Option<String>,
    executable: Option<String>,
}

/// Accepted by ansible-core, not by recover: refused by name at load.
const REFUSED: &[&str] = &["archive", "archive_prefix", "separate_git_dir", "verify_commit", "gpg_allowlist", "gpg_whitelist", "reference", "refspec", "track_submodules"];

const SPEC: &[ArgSpec] = &[
    req("repo", Kind::Str).aliases(&["name"]).doc("The repository's address."),
    opt("dest", Kind::Str).doc("The folder of the checkout."),
    opt("version", Kind::Any).default("HEAD").doc("A branch, a tag or a commit."),
    opt("force", Kind::Bool).default("false").doc("Discard local modifications."),
    opt("depth", Kind::Any).doc("A shallow clone of this many commits."),
    opt("clone", Kind::Bool).default("true").doc("Clone when `dest` is missing."),
    opt("update", Kind::Bool).default("true").doc("Fetch and switch to `version` when the checkout differs."),
    opt("remote", Kind::Str).default("origin").doc("The name of the remote."),
    opt("bare", Kind::Bool).default("false").doc("A bare repository."),
    opt("single_branch", Kind::Bool).default("false").doc("Clone only the branch of `version`."),
    opt("umask", Kind::Any).doc("The umask git runs with."),
    opt("recursive", Kind::Bool).default("true").doc("Clone and update submodules too."),
    opt("accept_hostkey", Kind::Bool).default("false").doc("Accept an SSH host key not yet known."),
    opt("accept_newhostkey", Kind::Bool).default("false").doc("Accept a new SSH host key, never a changed one."),
    opt("ssh_opts", Kind::Str).doc("Options for the `ssh` git uses."),
    opt("key_file", Kind::Str).doc("The private key git's `ssh` uses."),
    opt("executable", Kind::Str).doc("The git program."),
    opt("archive", Kind::Any).doc("Refused by name: recover does not make archives of a checkout."),
    opt("archive_prefix", Kind::Any).doc("Refused by name (see `archive`)."),
    opt("separate_git_dir", Kind::Any).doc("Refused by name."),
    opt("verify_commit", Kind::Any).doc("Refused by name."),
    opt("gpg_allowlist", Kind::Any).aliases(&["gpg_whitelist"]).doc("Refused by name (see `verify_commit`)."),
    opt("reference", Kind::Any).doc("Refused by name."),
    opt("refspec", Kind::Any).doc("Refused by name."),
    opt("track_submodules", Kind::Any).doc("Refused by name."),
];

/// ansible-core's `unfrackgitpath`: a URL or path without its trailing `/`, `.git` kept.
fn unfrack(p: &str) -> String {
    p.trim_end_matches('/').to_string()
}

struct G<'a> {
    ctx: &'a StepCtx<'a>,
    git: String,
    env: String,
}

impl G<'_> {
    /// Runs `git ARGS` (in `cwd` when given) and returns (rc, stdout, stderr).
    async fn run(&self, cwd: Option<&str>, args: &str) -> Result<(i32, String, String), StepError> {
        let cd = cwd.map(|d| format!("cd {} && ", quote::quote(d))).unwrap_or_default();
        let out = self.ctx.run(Cmd::shell(format!("{cd}{}{} {args}", self.env, self.git))).await?;
        Ok((out.rc, out.stdout_str(), out.stderr_str()))
    }
    async fn ok(&self, cwd: Option<&str>, args: &str) -> Result<String, StepError> {
        let (rc, out, err) = self.run(cwd, args).await?;
        if rc != 0 {
            return Err(StepError::Failed { msg: format!("Failed to run `git {args}`: {}", err.trim()), result: json!({"rc": rc, "stdout": out, "stderr": err}) });
        }
        Ok(out)
    }
    async fn is_remote_branch(&self, cwd: Option<&str>, remote: &str, version: &str) -> Result<bool, StepError> {
        Ok(self.ok(cwd, &format!("ls-remote {} -h {}", quote::quote(remote), quote::quote(&format!("refs/heads/{version}")))).await?.contains(version))
    }
    async fn is_remote_tag(&self, cwd: Option<&str>, remote: &str, version: &str) -> Result<bool, StepError> {
        Ok(self.ok(cwd, &format!("ls-remote {} -t {}", quote::quote(remote), quote::quote(&format!("refs/tags/{version}")))).await?.contains(version))
    }
    /// `get_remote_head`: the commit `version` names on `remote` (a commit: itself).
    async fn remote_head(&self, cwd: Option<&str>, remote: &str, version: &str, head_branch: Option<&str>) -> Result<String, StepError> {
        let r = quote::quote(remote);
        let (cmd, tag) = if version == "HEAD" {
            match (cwd, head_branch) {
                (Some(_), Some(b)) => (format!("ls-remote {r} -h {}", quote::quote(&format!("refs/heads/{b}"))), false),
                _ => (format!("ls-remote {r} -h HEAD"), false),
            }
        } else if self.is_remote_branch(cwd, remote, version).await? {
            (format!("ls-remote {r} -h {}", quote::quote(&format!("refs/heads/{version}"))), false)
        } else if self.is_remote_tag(cwd, remote, version).await? {
            (format!("ls-remote {r} -t {}", quote::quote(&format!("refs/tags/{version}*"))), true)
        } else {
            return Ok(version.to_string());
        };
        let out = self.ok(cwd, &cmd).await?;
        if out.is_empty() {
            return Err(StepError::failed(format!("Could not determine remote revision for {version}")));
        }
        let mut line = out.clone();
        if tag {
            for t in out.split('\n') {
                if t.ends_with(&format!("{version}^{{}}")) {
                    line = t.to_string();
                    break;
                } else if t.ends_with(version) {
                    line = t.to_string();
                }
            }
        }
        Ok(line.split_whitespace().next().unwrap_or_default().to_string())
    }
}

/// The branch HEAD is on (ansible-core's `get_head_branch`): from `.git/HEAD`, or for a
/// detached HEAD from `refs/remotes/REMOTE/HEAD`. The shell, for after a clone.
fn head_branch_sh(repo_path: &str, remote: &str) -> String {
    let rp = quote::quote(repo_path);
    let rr = quote::quote(&format!("{repo_path}/refs/remotes/{remote}/HEAD"));
    format!("b=$(sed -n 's|^ref: refs/heads/||p' {rp}/HEAD); [ -n \"$b\" ] || b=$(sed -n 's|^ref: refs/remotes/{remote}/||p' {rr} 2>/dev/null)")
}

#[async_trait]
impl Module for Git {
    fn name(&self) -> &'static str {
        "git"
    }
    fn doc(&self) -> &'static str {
        Self::DOCS
    }
    fn spec(&self) -> &'static [ArgSpec] {
        SPEC
    }
    fn validate(&self, task: &Task) -> SResult<()> {
        for k in REFUSED {
            if task.args.get(*k).is_some_and(|v| !v.is_null() && v != &json!(false)) {
                return Err(SourceError::new(task.arg_span(k), format!("git: '{k}' is not supported by recover")).help("run git with `command:` for this, or leave the argument out"));
            }
        }
        Ok(())
    }
    async fn plan(&self, ctx: &StepCtx<'_>, args: &Json) -> Result<Plan, StepError> {
        let mut args = args.clone();
        if let Json::Object(m) = &mut args {
            m.retain(|k, v| !REFUSED.contains(&k.as_str()) || v.is_null() || v == &json!(false));
        }
        let a: Args = typed("git", &args)?;
        let version = match &a.version {
            None | Some(Json::Null) => "HEAD".to_string(),
            Some(Json::String(s)) => s.clone(),
            Some(other) => other.to_string(),
        };
        let remote = a.remote.clone().unwrap_or_else(|| "origin".into());
        let (force, allow_clone, update, bare) = (a.force.unwrap_or(false), a.clone.unwrap_or(true), a.update.unwrap_or(true), a.bare.unwrap_or(false));
        let depth = match &a.depth {
            None | Some(Json::Null) => None,
            Some(Json::Number(n)) => n.as_u64(),
            Some(Json::String(s)) => Some(s.trim().parse::<u64>().map_err(|_| StepError::failed(format!("git: depth must be a number, got {s:?}")))?),
            Some(other) => return Err(StepError::failed(format!("git: depth must be a number, got {other}"))),
        };
        let mut ssh_opts = a.ssh_opts.clone();
        for (on, opt) in [(a.accept_hostkey, "-o StrictHostKeyChecking=no"), (a.accept_newhostkey, "-o StrictHostKeyChecking=accept-new")] {
            if on.unwrap_or(false) {
                ssh_opts = Some(match ssh_opts {
                    Some(o) if o.contains("StrictHostKeyChecking=no") || o.contains("StrictHostKeyChecking=accept-new") => o,
                    Some(o) => format!("{o} {opt}"),
                    None => opt.to_string(),
                });
            }
        }
        let mut env = String::from("LANG=C LC_ALL=C ");
        if ssh_opts.is_some() || a.key_file.is_some() {
            let mut ssh = String::from("ssh");
            if let Some(k) = &a.key_file {
                ssh.push_str(&format!(" -i {} -o IdentitiesOnly=yes", quote::quote(k)));
            }
            if let Some(o) = &ssh_opts {
                ssh.push_str(&format!(" {o}"));
            }
            env.push_str(&format!("GIT_SSH_COMMAND={} ", quote::quote(&ssh)));
        }
        let umask = match &a.umask {
            None | Some(Json::Null) => None,
            Some(Json::String(s)) => Some(u32::from_str_radix(s.trim(), 8).map_err(|_| StepError::failed("umask must be an octal integer"))?),
            Some(_) => return Err(StepError::failed("umask must be defined as a quoted octal integer")),
        };
        let g = G { ctx, git: a.executable.clone().map(|e| quote::quote(&e)).unwrap_or_else(|| "git".into()), env };
        let repo = if a.repo.starts_with('/') { format!("file://{}", a.repo) } else { a.repo.clone() };
        let Some(dest) = a.dest.clone() else {
            if allow_clone {
                return Err(StepError::failed("the destination directory must be specified unless clone=no"));
            }
            let head = g.remote_head(None, &repo, &version, None).await?;
            let mut plan = Plan::done(json!({"before": null, "after": head}));
            plan.changes.push(format!("the remote has {head}"));
            return Ok(plan);
        };
        let repo_path = if bare { dest.clone() } else { format!("{dest}/.git") };
        let exists = ctx.run(Cmd::argv(["test", "-e", &format!("{repo_path}/config")])).await?.rc == 0;
        let d = quote::quote(&dest);
        let git = format!("{}{}", g.env, g.git);
        let umask_sh = umask.map(|u| format!("umask {u:03o}; ")).unwrap_or_default();
        let mut plan = Plan::ok();
        plan.result.insert("before".into(), Json::Null);
        if !exists {
            let head = g.remote_head(None, &repo, &version, None).await?;
            plan.result.insert("after".into(), json!(head));
            plan.diff = Some(crate::modules::FileDiff { path: dest.clone(), before: None, after: None, mode: None, prepared: Some(format!(">> Newly checked out {head}")) });
            if ctx.check || !allow_clone {
                plan.changes.push(format!("clone {} into {dest} at {head}", a.repo));
                if !allow_clone {
                    plan.done = true;
                }
                return Ok(plan);
            }
            let branch_or_tag = g.is_remote_branch(None, &repo, &version).await? || g.is_remote_tag(None, &repo, &version).await?;
            let mut clone = format!("{git} clone");
            if bare {
                clone.push_str(" --bare");
            } else {
                clone.push_str(&format!(" --origin {}", quote::quote(&remote)));
            }
            let mut warnings = Vec::new();
            if let Some(n) = depth {
                if version == "HEAD" {
                    clone.push_str(&format!(" --depth {n}"));
                } else if branch_or_tag {
                    clone.push_str(&format!(" --depth {n} --branch {}", quote::quote(&version)));
                } else {
                    warnings.push("Ignoring depth argument. Shallow clones are only available for HEAD, branches, tags or in combination with refspec.");
                }
            }
            if a.single_branch.unwrap_or(false) {
                clone.push_str(" --single-branch");
                if branch_or_tag {
                    clone.push_str(&format!(" --branch {}", quote::quote(&version)));
                }
            }
            let parent = dest.trim_end_matches('/').rsplit_once('/').map(|(p, _)| p.to_string()).filter(|p| !p.is_empty()).unwrap_or_else(|| ".".into());
            let mut script = format!("{umask_sh}mkdir -p {} && {clone} {} {d}", quote::quote(&parent), quote::quote(&repo));
            if bare && remote != "origin" {
                script.push_str(&format!(" && cd {d} && {git} remote add {} {}", quote::quote(&remote), quote::quote(&repo)));
            }
            if !bare {
                script.push_str(&format!(" && cd {d} && {}", switch_sh(&git, &repo_path, &remote, &version, g.is_remote_branch(None, &repo, &version).await?)));
                if a.recursive.unwrap_or(true) {
                    script.push_str(&format!(" && {{ [ ! -f .gitmodules ] || {git} submodule update --init --recursive; }}"));
                }
            }
            if !warnings.is_empty() {
                plan.result.insert("warnings".into(), json!(warnings));
            }
            plan.changes.push(format!("clone {} into {dest} at {version}", a.repo));
            plan.commands.push(Cmd::shell(script).label(format!("git clone {} {dest}", a.repo)));
            if !ctx.check {
            plan.result.insert("_dest".into(), json!(dest));
        }
            return Ok(plan);
        }
        let before = g.ok(Some(&dest), "rev-parse HEAD").await.map(|s| s.trim_end_matches('\n').to_string()).unwrap_or_default();
        plan.result.insert("before".into(), json!(before));
        if !update {
            plan.result.insert("after".into(), json!(before));
            plan.done = true;
            return Ok(plan);
        }
        let local_mods = !bare && g.ok(Some(&dest), "status --porcelain").await?.lines().any(|l| !l.starts_with("??"));
        if local_mods && !force {
            return Err(StepError::Failed { msg: format!("Local modifications exist in the destination: {dest} (force=no)."), result: json!({"before": before}) });
        }
        let remote_url = g.run(Some(&dest), &format!("ls-remote --get-url {}", quote::quote(&remote))).await?;
        let remote_url = (remote_url.0 == 0).then(|| remote_url.1.trim_end_matches('\n').to_string());
        let url_changed = remote_url.as_ref().is_some_and(|u| !u.is_empty() && *u != repo && unfrack(u) != unfrack(&repo));
        plan.result.insert("remote_url_changed".into(), json!(url_changed));
        let head_branch = {
            let out = ctx.run(Cmd::shell(format!("{}; printf %s \"$b\"", head_branch_sh(&repo_path, &remote)))).await?;
            Some(out.stdout_str()).filter(|b| !b.is_empty())
        };
        let head = g.remote_head(Some(&dest), &remote, &version, head_branch.as_deref()).await?;
        // The commit the checkout will be at: a branch's or tag's on the remote, else the
        // commit the version names here.
        let after = match g.run(Some(&dest), &format!("rev-parse --verify --quiet {}", quote::quote(&format!("{head}^{{commit}}")))).await? {
            (0, out, _) if !ctx.check => out.trim().to_string(),
            _ => head.clone(),
        };
        plan.result.insert("after".into(), json!(after));
        let changed = before != after || url_changed || (local_mods && !ctx.check);
        if !changed {
            return Ok(plan);
        }
        if before != after {
            let diff = match g.run(Some(&dest), &format!("diff {} {}", quote::quote(&before), quote::quote(&after))).await? {
                (0, out, _) if !out.is_empty() => out,
                (0, _, _) => format!(">> No visual differences between {before} and {after}"),
                (_, _, err) if !err.is_empty() => format!(">> Failed to get proper diff between {before} and {after}:\n>> {err}"),
                _ => format!(">> Failed to get proper diff between {before} and {after}"),
            };
            plan.diff = Some(crate::modules::FileDiff { path: dest.clone(), before: None, after: None, mode: None, prepared: Some(diff) });
        }
        plan.changes.push(format!("update {dest} from {} to {version} ({after})", if before.is_empty() { "nothing" } else { &before[..before.len().min(12)] }));
        let mut script = format!("{umask_sh}cd {d}");
        if url_changed || remote_url.is_none() {
            script.push_str(&format!(" && {git} remote set-url {} {}", quote::quote(&remote), quote::quote(&repo)));
        }
        if local_mods {
            script.push_str(&format!(" && {git} reset --hard HEAD"));
            plan.destructive = Some(crate::safety::Destructive { reason: format!("discards the local modifications in {dest} (force: true)"), paths: vec![dest.clone()], ..Default::default() });
        }
        let mut fetch = format!("{git} fetch");
        let mut refspecs: Vec<String> = Vec::new();
        if let Some(n) = depth {
            if version == "HEAD" {
                refspecs.extend(head_branch.clone());
            } else if g.is_remote_branch(Some(&dest), &repo, &version).await? {
                if head_branch.as_deref() != Some(version.as_str()) {
                    refspecs.push(format!("+refs/heads/{version}:refs/heads/{version}"));
                }
                refspecs.push(format!("+refs/heads/{version}:refs/remotes/{remote}/{version}"));
            } else if g.is_remote_tag(Some(&dest), &repo, &version).await? {
                refspecs.push(format!("+refs/tags/{version}:refs/tags/{version}"));
            }
            if !refspecs.is_empty() {
                fetch.push_str(&format!(" --depth {n}"));
            }
        }
        if depth.is_none() || refspecs.is_empty() {
            if bare {
                refspecs = vec!["+refs/heads/*:refs/heads/*".into(), "+refs/tags/*:refs/tags/*".into()];
            } else {
                fetch.push_str(" --tags");
            }
        }
        if force {
            fetch.push_str(" --force");
        }
        fetch.push_str(&format!(" {}", quote::quote(&remote)));
        for r in &refspecs {
            fetch.push_str(&format!(" {}", quote::quote(r)));
        }
        script.push_str(&format!(" && {fetch}"));
        if !bare {
            script.push_str(&format!(" && {}", switch_sh(&git, &repo_path, &remote, &version, g.is_remote_branch(Some(&dest), &remote, &version).await?)));
            if a.recursive.unwrap_or(true) {
                script.push_str(&format!(" && {{ [ ! -f .gitmodules ] || {git} submodule update --init --recursive; }}"));
            }
        }
        plan.commands.push(Cmd::shell(script).label(format!("git fetch and checkout {version} in {dest}")));
        if !ctx.check {
            plan.result.insert("_dest".into(), json!(dest));
        }
        Ok(plan)
    }
    async fn apply(&self, ctx: &StepCtx<'_>, mut plan: Plan) -> Result<Outcome, StepError> {
        let dest = plan.result.remove("_dest").and_then(|d| d.as_str().map(str::to_string));
        let changed = plan.changed();
        let mut result = plan.result;
        for cmd in plan.commands {
            ctx.run_ok(cmd).await?;
        }
        if let Some(d) = dest {
            let out = ctx.run_ok(Cmd::shell(format!("cd {} && git rev-parse HEAD", quote::quote(&d)))).await?;
            result.insert("after".into(), json!(out.stdout_str().trim_end()));
        }
        Ok(Outcome { changed, result })
    }
}

/// ansible-core's `switch_version`, in the checkout's folder.
fn switch_sh(git: &str, repo_path: &str, remote: &str, version: &str, remote_branch: bool) -> String {
    let (r, v) = (quote::quote(remote), quote::quote(version));
    if version == "HEAD" {
        return format!("{}; {git} checkout --force \"$b\" && {git} reset --hard {r}/\"$b\" --", head_branch_sh(repo_path, remote));
    }
    if remote_branch {
        return format!(
            "if {git} show-ref --verify --quiet refs/heads/{v}; then {git} checkout --force {v} && {git} reset --hard {}; else {git} checkout --track -b {v} {}; fi",
            quote::quote(&format!("{remote}/{version}")),
            quote::quote(&format!("{remote}/{version}"))
        );
    }
    let _ = r;
    format!("{git} checkout --force {v}")
}
