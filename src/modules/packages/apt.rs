//! `apt` (and `package` on an apt host): Debian packages present, at the newest version,
//! absent (with `purge`, `autoremove`), installed from `.deb` files, upgrades, and the cache
//! (`update_cache`, `cache_valid_time`). The plan is apt's own simulation (`apt-get -s`), so
//! dry-run and check mode say exactly which packages would be installed, upgraded or removed.
//!
//! For the safety engine: installing a package that is not there is harmless; removing,
//! purging, upgrading or downgrading one is destructive (its files are replaced or deleted,
//! its services stopped), and the conffiles of each such package are what the verified backup
//! must cover. Other package managers (`yum`, `dnf`, ...) are refused on an apt host by name.

use async_trait::async_trait;
use documented::Documented;
use serde::Deserialize;
use serde_json::{json, Value as Json};

use crate::error::{SResult, SourceError};
use crate::modules::{de, opt, typed, ArgSpec, Kind, Module, Outcome, Plan, StepCtx, StepError};
use crate::playbook::Task;
use crate::transport::{quote, Cmd};

/// `apt`: Debian packages installed, upgraded or removed with apt-get (`apt-get -s` first, so the
/// plan lists every package apt would touch); the cache updated, `.deb` files installed, `upgrade`,
/// `autoremove`, `clean`.
///
/// Returns: `cache_updated`, `cache_update_time`, `stdout`, `stderr`; the packages changed are in
/// the diff.
///
/// Check mode: simulates with `apt-get -s` and lists what would be installed, upgraded or removed;
/// changes nothing.
#[derive(Documented)]
pub struct Apt;
/// `package`: the generic package module; on apt hosts it runs `apt` with `name` and `state`.
///
/// Returns: as `apt`.
///
/// Check mode: as `apt`: simulated.
#[derive(Documented)]
pub struct Package;

#[derive(Deserialize, Clone, Default)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(default, alias = "pkg", alias = "package", deserialize_with = "de::list_loose")]
    name: Vec<String>,
    state: Option<String>,
    #[serde(default, alias = "update-cache", deserialize_with = "de::bool_loose")]
    update_cache: Option<bool>,
    #[serde(default, deserialize_with = "de::u64_loose")]
    cache_valid_time: Option<u64>,
    #[serde(default, alias = "install-recommends", deserialize_with = "de::bool_loose")]
    install_recommends: Option<bool>,
    deb: Option<String>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    autoremove: Option<bool>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    purge: Option<bool>,
    #[serde(alias = "default-release")]
    default_release: Option<String>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    force: Option<bool>,
    #[serde(default, alias = "allow-downgrade", alias = "allow_downgrades", alias = "allow-downgrades", deserialize_with = "de::bool_loose")]
    allow_downgrade: Option<bool>,
    #[serde(default, alias = "allow-unauthenticated", deserialize_with = "de::bool_loose")]
    allow_unauthenticated: Option<bool>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    allow_change_held_packages: Option<bool>,
    dpkg_options: Option<String>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    only_upgrade: Option<bool>,
    #[serde(default, deserialize_with = "de::u64_loose")]
    policy_rc_d: Option<u64>,
    upgrade: Option<Json>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    fail_on_autoremove: Option<bool>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    force_apt_get: Option<bool>,
    #[serde(default, deserialize_with = "de::u64_loose")]
    lock_timeout: Option<u64>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    update_cache_retries: Option<bool>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    clean: Option<bool>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    autoclean: Option<bool>,
    /// `package` only: which manager (`auto` = the host's).
    #[serde(rename = "use")]
    use_: Option<String>,
}

const SPEC: &[ArgSpec] = &[
    opt("name", Kind::List).aliases(&["pkg", "package"]).doc("Packages, with an optional version (`foo=1.0*`)."),
    opt("state", Kind::Str).default("present").doc("`present`, `latest`, `absent`, `build-dep` or `fixed`."),
    opt("update_cache", Kind::Bool).aliases(&["update-cache"]).default("false").doc("Run `apt-get update` first."),
    opt("cache_valid_time", Kind::Int).default("0").doc("Skip the update when the cache is newer than this many seconds."),
    opt("install_recommends", Kind::Bool).aliases(&["install-recommends"]).doc("Install recommended packages (apt's setting when unset)."),
    opt("deb", Kind::Str).doc("A `.deb` file on the host (or URL) to install."),
    opt("autoremove", Kind::Bool).default("false").doc("Remove packages no longer needed."),
    opt("purge", Kind::Bool).default("false").doc("Remove configuration files with `state: absent`."),
    opt("default_release", Kind::Str).aliases(&["default-release"]).doc("The release packages are taken from (`-t`)."),
    opt("force", Kind::Bool).default("false").doc("Allow what apt otherwise refuses (downgrades, unauthenticated)."),
    opt("allow_downgrade", Kind::Bool).aliases(&["allow-downgrade", "allow_downgrades", "allow-downgrades"]).default("false").doc("Allow a version older than the installed one."),
    opt("allow_unauthenticated", Kind::Bool).aliases(&["allow-unauthenticated"]).default("false").doc("Allow packages that cannot be authenticated."),
    opt("allow_change_held_packages", Kind::Bool).default("false").doc("Allow changing packages on hold."),
    opt("dpkg_options", Kind::Str).default("force-confdef,force-confold").doc("dpkg options, comma separated."),
    opt("only_upgrade", Kind::Bool).default("false").doc("Only upgrade installed packages."),
    opt("policy_rc_d", Kind::Int).doc("The exit code of a `policy-rc.d` that stops services from starting."),
    opt("upgrade", Kind::Any).default("no").doc("`no`, `yes`/`safe`, `full` or `dist`."),
    opt("fail_on_autoremove", Kind::Bool).default("false").doc("Fail rather than remove packages to satisfy the request."),
    opt("force_apt_get", Kind::Bool).default("false").doc("Use apt-get (recover always does)."),
    opt("lock_timeout", Kind::Int).default("60").doc("Seconds to wait for the dpkg lock."),
    opt("clean", Kind::Bool).default("false").doc("Run `apt-get clean`."),
    opt("autoclean", Kind::Bool).default("false").doc("Run `apt-get autoclean`."),
];
const PACKAGE_SPEC: &[ArgSpec] = &[
    crate::modules::req("name", Kind::List).doc("The packages."),
    opt("state", Kind::Str).doc("`present`, `latest` or `absent`."),
    opt("use", Kind::Str).default("auto").doc("The package manager (`auto` finds apt)."),
];

/// One line of `apt-get -s`: what apt would do to a package.
#[derive(Debug, Clone, PartialEq)]
pub struct SimStep {
    /// `Inst`, `Remv` or `Purg` (`Conf` lines are left out).
    pub op: String,
    pub package: String,
    /// The installed version it replaces (an upgrade or downgrade), if any.
    pub from: Option<String>,
    /// The version it installs.
    pub to: Option<String>,
}

/// Parses `apt-get -s` output: `Inst pkg [old] (new repo [arch])`, `Remv pkg [old]`, `Purg pkg [old]`.
pub fn parse_sim(out: &str) -> Vec<SimStep> {
    out.lines()
        .filter_map(|l| {
            let mut w = l.splitn(3, ' ');
            let op = w.next()?;
            if !matches!(op, "Inst" | "Remv" | "Purg") {
                return None;
            }
            let package = w.next()?.to_string();
            let rest = w.next().unwrap_or("");
            let from = rest.strip_prefix('[').and_then(|r| r.split_once(']')).map(|(v, _)| v.to_string());
            let to = rest.find('(').and_then(|i| rest[i + 1..].split_whitespace().next()).map(str::to_string);
            Some(SimStep { op: op.into(), package, from, to })
        })
        .collect()
}

/// `name=1.0`, `name>=1.0` (as apt takes it), or a bare name.
fn split_version(p: &str) -> (&str, Option<&str>) {
    match p.split_once('=') {
        Some((n, v)) if !n.ends_with(['<', '>']) => (n, Some(v)),
        _ => (p, None),
    }
}

impl Args {
    fn apt_opts(&self) -> String {
        let mut o = String::from("-y");
        let dpkg = self.dpkg_options.clone().unwrap_or_else(|| "force-confdef,force-confold".into());
        for d in dpkg.split(',').map(str::trim).filter(|d| !d.is_empty()) {
            o.push_str(&format!(" -o Dpkg::Options::=--{d}"));
        }
        match self.install_recommends {
            Some(true) => o.push_str(" -o APT::Install-Recommends=yes"),
            Some(false) => o.push_str(" -o APT::Install-Recommends=no"),
            None => {}
        }
        if let Some(r) = &self.default_release {
            o.push_str(&format!(" -t {}", quote::quote(r)));
        }
        if self.allow_downgrade.unwrap_or(false) {
            o.push_str(" --allow-downgrades");
        }
        if self.allow_unauthenticated.unwrap_or(false) || self.force.unwrap_or(false) {
            o.push_str(" --allow-unauthenticated");
        }
        if self.force.unwrap_or(false) {
            o.push_str(" --allow-downgrades --allow-remove-essential --allow-change-held-packages");
        } else if self.allow_change_held_packages.unwrap_or(false) {
            o.push_str(" --allow-change-held-packages");
        }
        if let Some(t) = self.lock_timeout {
            o.push_str(&format!(" -o DPkg::Lock::Timeout={t}"));
        }
        o
    }
}

/// The host's package state for these names: (installed version or "", dpkg status word).
async fn installed(ctx: &StepCtx<'_>, names: &[String]) -> Result<std::collections::HashMap<String, (String, String)>, StepError> {
    let mut map = std::collections::HashMap::new();
    if names.is_empty() {
        return Ok(map);
    }
    let q: Vec<String> = names.iter().map(|n| quote::quote(n)).collect();
    let out = ctx.run(Cmd::shell(format!("dpkg-query -W -f='${{Package}}\\t${{db:Status-Status}}\\t${{Version}}\\n' {} 2>/dev/null; true", q.join(" ")))).await?;
    for l in out.stdout_str().lines() {
        let f: Vec<&str> = l.split('\t').collect();
        if f.len() == 3 {
            map.insert(f[0].to_string(), (if f[1] == "installed" { f[2].to_string() } else { String::new() }, f[1].to_string()));
        }
    }
    Ok(map)
}

fn apt_get(a: &Args, sub: &str, words: &[String], simulate: bool) -> String {
    let env = "DEBIAN_FRONTEND=noninteractive DEBCONF_NONINTERACTIVE_SEEN=true";
    let sim = if simulate { " -s" } else { "" };
    let w: Vec<String> = words.iter().map(|w| quote::quote(w)).collect();
    format!("{env} apt-get{sim} {} {sub} {}", a.apt_opts(), w.join(" ")).trim_end().to_string()
}

/// With `policy_rc_d`: a `/usr/sbin/policy-rc.d` that exits with it while apt runs (services
/// are then not started or restarted by the packages), the previous one put back after.
fn with_policy_rc_d(a: &Args, cmd: String) -> String {
    match a.policy_rc_d {
        None => cmd,
        Some(code) => format!(
            "p=/usr/sbin/policy-rc.d; if [ -e $p ]; then mv $p $p.recover-prev; fi; printf '#!/bin/sh\\nexit {code}\\n' > $p; chmod 0755 $p; {cmd}; rc=$?; rm -f $p; if [ -e $p.recover-prev ]; then mv $p.recover-prev $p; fi; exit $rc"
        ),
    }
}

/// How old the apt cache is, in seconds (`update-success-stamp`, else the lists folder).
async fn cache_age(ctx: &StepCtx<'_>) -> Result<(Option<u64>, u64), StepError> {
    let out = ctx.run(Cmd::shell("date +%s; stat -c %Y /var/lib/apt/periodic/update-success-stamp 2>/dev/null || stat -c %Y /var/lib/apt/lists 2>/dev/null || true")).await?;
    let nums: Vec<u64> = out.stdout_str().lines().filter_map(|l| l.trim().parse().ok()).collect();
    let now = nums.first().copied().unwrap_or(0);
    let mtime = nums.get(1).copied();
    Ok((mtime.map(|m| now.saturating_sub(m)), mtime.unwrap_or(0)))
}

async fn plan_apt(ctx: &StepCtx<'_>, a: &Args, check_cache: bool) -> Result<Plan, StepError> {
    for (k, on) in [("clean", a.clean), ("autoclean", a.autoclean)] {
        if on == Some(true) {
            return Err(StepError::failed(format!("apt: {k} is not supported by recover")));
        }
    }
    let _ = (a.fail_on_autoremove, a.force_apt_get, a.update_cache_retries);
    let state = a.state.clone().unwrap_or_else(|| "present".into());
    let state = match state.as_str() {
        "installed" => "present".to_string(),
        "removed" => "absent".to_string(),
        "present" | "latest" | "absent" => state,
        "build-dep" | "fixed" => return Err(StepError::failed(format!("apt: state={state} is not supported by recover"))),
        other => return Err(StepError::failed(format!("apt: value of state must be one of: absent, build-dep, fixed, latest, present, got: {other}"))),
    };
    if let Some(p) = a.name.iter().find(|n| n.contains(['*', '?', '['])) {
        return Err(StepError::failed(format!("apt: package name patterns ({p}) are not supported by recover; name each package")));
    }
    let mut plan = Plan::ok();
    let mut pre: Vec<String> = Vec::new();
    // The cache.
    let mut updated = false;
    let (age, mtime) = cache_age(ctx).await?;
    if a.update_cache.unwrap_or(false) && check_cache {
        let fresh = a.cache_valid_time.filter(|t| *t > 0).zip(age).is_some_and(|(valid, age)| age < valid);
        if !fresh {
            updated = true;
            plan.changes.push("update the apt cache".into());
            pre.push(format!("DEBIAN_FRONTEND=noninteractive apt-get update{}", a.lock_timeout.map(|t| format!(" -o DPkg::Lock::Timeout={t}")).unwrap_or_default()));
        }
    }
    plan.result.insert("cache_updated".into(), json!(updated));
    plan.result.insert("cache_update_time".into(), json!(mtime));
    // What apt would do.
    let mut sim_cmds: Vec<(String, String)> = Vec::new(); // (simulation, real)
    if let Some(deb) = &a.deb {
        let out = ctx.run(Cmd::shell(format!("dpkg-deb -f {} Package Version", quote::quote(deb)))).await?;
        if !out.ok() {
            return Err(StepError::failed(format!("apt: deb {deb}: {}", out.stderr_str().trim())));
        }
        let text = out.stdout_str();
        let field = |k: &str| text.lines().find_map(|l| l.strip_prefix(&format!("{k}: ")).map(str::to_string)).unwrap_or_default();
        let (pkg, ver) = (field("Package"), field("Version"));
        let have = installed(ctx, std::slice::from_ref(&pkg)).await?;
        let cur = have.get(&pkg).map(|h| h.0.clone()).filter(|v| !v.is_empty());
        if let Some(cur) = cur.as_ref().filter(|c| **c != ver) {
            let newer = ctx.run(Cmd::argv(["dpkg", "--compare-versions", cur.as_str(), "gt", ver.as_str()])).await?.ok();
            if newer && !a.force.unwrap_or(false) && !a.allow_downgrade.unwrap_or(false) {
                return Err(StepError::failed(format!("A later version is already installed ({pkg} {cur}; {deb} is {ver})")));
            }
        }
        if cur.as_deref() != Some(ver.as_str()) {
            sim_cmds.push((apt_get(a, "install", &[deb.clone()], true), apt_get(a, "install", &[deb.clone()], false)));
        }
    }
    let upgrade = match &a.upgrade {
        None | Some(Json::Null) | Some(Json::Bool(false)) => None,
        Some(Json::Bool(true)) => Some("upgrade"),
        Some(Json::String(s)) => match s.as_str() {
            "no" | "false" => None,
            "yes" | "true" | "safe" => Some("upgrade"),
            "full" | "dist" => Some("dist-upgrade"),
            other => return Err(StepError::failed(format!("apt: upgrade must be one of: dist, full, no, safe, yes, got: {other}"))),
        },
        Some(other) => return Err(StepError::failed(format!("apt: bad upgrade value {other}"))),
    };
    if let Some(u) = upgrade {
        sim_cmds.push((apt_get(a, u, &[], true), apt_get(a, u, &[], false)));
    }
    if !a.name.is_empty() {
        let bare: Vec<String> = a.name.iter().map(|n| split_version(n).0.to_string()).collect();
        let have = installed(ctx, &bare).await?;
        let mut want = Vec::new();
        for n in &a.name {
            let (name, ver) = split_version(n);
            let (cur, status) = have.get(name).cloned().unwrap_or_default();
            let need = match state.as_str() {
                "present" => match ver {
                    Some(v) => !(cur == v || (v.ends_with('*') && cur.starts_with(v.trim_end_matches('*')))),
                    None => cur.is_empty() && !a.only_upgrade.unwrap_or(false),
                },
                "latest" => !(a.only_upgrade.unwrap_or(false) && cur.is_empty()),
                _ => !cur.is_empty() || (a.purge.unwrap_or(false) && status == "config-files"),
            };
            if need {
                want.push(n.clone());
            }
        }
        if !want.is_empty() {
            let sub = if state == "absent" { if a.purge.unwrap_or(false) { "purge" } else { "remove" } } else { "install" };
            let mut words = want.clone();
            if state == "absent" && a.autoremove.unwrap_or(false) {
                words.insert(0, "--auto-remove".into());
            }
            if state == "latest" && a.only_upgrade.unwrap_or(false) {
                words.insert(0, "--only-upgrade".into());
            }
            sim_cmds.push((apt_get(a, sub, &words, true), apt_get(a, sub, &words, false)));
        }
    } else if a.autoremove.unwrap_or(false) && a.deb.is_none() && upgrade.is_none() {
        let sub = if a.purge.unwrap_or(false) { "autopurge" } else { "autoremove" };
        sim_cmds.push((apt_get(a, sub, &[], true), apt_get(a, sub, &[], false)));
    } else if a.deb.is_none() && upgrade.is_none() && !a.update_cache.unwrap_or(false) {
        return Err(StepError::failed("apt: one of name, deb, upgrade, autoremove or update_cache is required"));
    }
    let mut steps = Vec::new();
    let mut prepared = String::new();
    for (sim, real) in &sim_cmds {
        let out = ctx.run(Cmd::shell(sim.clone())).await?;
        if !out.ok() {
            // A package apt does not know, before a cache update that may bring it: say so.
            if updated {
                plan.changes.push(format!("then: {}", real.split(" -y ").next().unwrap_or(real)));
                pre.push(real.clone());
                continue;
            }
            let err = out.stderr_str();
            let msg = err.lines().filter(|l| l.starts_with("E:")).collect::<Vec<_>>().join("; ");
            return Err(StepError::Failed { msg: if msg.is_empty() { format!("apt: `{sim}` failed: {}", err.trim()) } else { msg }, result: json!({"rc": out.rc, "stdout": out.stdout_str(), "stderr": err}) });
        }
        let s = parse_sim(&out.stdout_str());
        prepared.push_str(&out.stdout_str().lines().filter(|l| !l.starts_with("Inst ") && !l.starts_with("Conf ") && !l.starts_with("Remv ") && !l.starts_with("Purg ") && !l.starts_with("NOTE:") && !l.starts_with("Reading ") && !l.starts_with("Building ")).collect::<Vec<_>>().join("\n"));
        if !s.is_empty() {
            pre.push(real.clone());
        }
        steps.extend(s);
    }
    for s in &steps {
        plan.changes.push(match (s.op.as_str(), &s.from, &s.to) {
            ("Inst", Some(f), Some(t)) => format!("upgrade package {} {f} -> {t}", s.package),
            ("Inst", None, Some(t)) => format!("install package {} {t}", s.package),
            ("Inst", _, _) => format!("install package {}", s.package),
            ("Purg", _, _) => format!("purge package {} (and its configuration files)", s.package),
            _ => format!("remove package {}", s.package),
        });
    }
    let touched: Vec<&SimStep> = steps.iter().filter(|s| s.op != "Inst" || s.from.is_some()).collect();
    if !touched.is_empty() {
        let names: Vec<String> = touched.iter().map(|s| s.package.clone()).collect();
        let q: Vec<String> = names.iter().map(|n| quote::quote(n)).collect();
        let conf = ctx.run(Cmd::shell(format!("dpkg-query -W -f='${{Conffiles}}\\n' {} 2>/dev/null; true", q.join(" ")))).await?;
        let mut paths: Vec<String> = conf.stdout_str().lines().filter_map(|l| l.split_whitespace().next()).filter(|p| p.starts_with('/')).map(str::to_string).collect();
        // Only conffiles that exist can be archived.
        if !paths.is_empty() {
            let qs: Vec<String> = paths.iter().map(|p| quote::quote(p)).collect();
            let exist = ctx.run(Cmd::shell(format!("for p in {}; do [ -e \"$p\" ] && echo \"$p\"; done; true", qs.join(" ")))).await?;
            paths = exist.stdout_str().lines().map(str::to_string).collect();
        }
        let verbs: Vec<String> = touched.iter().map(|s| match s.op.as_str() { "Purg" => format!("purges {}", s.package), "Remv" => format!("removes {}", s.package), _ => format!("upgrades {}", s.package) }).collect();
        plan.destructive = Some(crate::safety::Destructive { reason: format!("{} (package files replaced or deleted)", verbs.join(", ")), paths, ..Default::default() });
    }
    if !prepared.trim().is_empty() {
        plan.result.insert("prepared".into(), json!(prepared.trim()));
    }
    plan.commands = pre.into_iter().map(|c| Cmd::shell(with_policy_rc_d(a, c))).collect();
    Ok(plan)
}

async fn apply_apt(ctx: &StepCtx<'_>, plan: Plan) -> Result<Outcome, StepError> {
    let changed = plan.changed();
    let mut result = plan.result;
    let (mut stdout, mut stderr) = (String::new(), String::new());
    for cmd in plan.commands {
        let out = ctx.run_ok(cmd).await?;
        stdout.push_str(&out.stdout_str());
        stderr.push_str(&out.stderr_str());
    }
    result.insert("stdout".into(), json!(stdout));
    result.insert("stderr".into(), json!(stderr));
    let (_, mtime) = cache_age(ctx).await?;
    result.insert("cache_update_time".into(), json!(mtime));
    Ok(Outcome { changed, result })
}

#[async_trait]
impl Module for Apt {
    fn name(&self) -> &'static str {
        "apt"
    }
    fn doc(&self) -> &'static str {
        Self::DOCS
    }
    fn spec(&self) -> &'static [ArgSpec] {
        SPEC
    }
    async fn plan(&self, ctx: &StepCtx<'_>, args: &Json) -> Result<Plan, StepError> {
        let a: Args = typed("apt", args)?;
        if a.use_.is_some() {
            return Err(StepError::failed("apt: module 'apt' has no argument 'use'"));
        }
        plan_apt(ctx, &a, true).await
    }
    async fn apply(&self, ctx: &StepCtx<'_>, plan: Plan) -> Result<Outcome, StepError> {
        apply_apt(ctx, plan).await
    }
}

/// The host's package manager, as `ansible_pkg_mgr` names it (the fact when gathered).
async fn pkg_mgr(ctx: &StepCtx<'_>) -> Result<String, StepError> {
    if let Some(m) = ctx.vars.get_attr("ansible_pkg_mgr").ok().filter(|v| !v.is_undefined() && !v.is_none()) {
        return Ok(m.to_string());
    }
    let out = ctx.run(Cmd::shell("for m in apt-get dnf yum zypper pacman apk; do if command -v $m >/dev/null 2>&1; then echo $m; break; fi; done")).await?;
    Ok(match out.stdout_str().trim() {
        "apt-get" => "apt".into(),
        "" => "unknown".into(),
        other => other.into(),
    })
}

#[async_trait]
impl Module for Package {
    fn name(&self) -> &'static str {
        "package"
    }
    fn doc(&self) -> &'static str {
        Self::DOCS
    }
    fn spec(&self) -> &'static [ArgSpec] {
        PACKAGE_SPEC
    }
    /// As ansible-core's `package` action: every argument but `use` goes to the host's package
    /// manager module, which judges them when the step runs (`update_cache` is apt's,
    /// `disable_gpg_check` dnf's: a role's branch for another family is skipped, not refused).
    fn free_keys(&self) -> bool {
        true
    }
    fn validate(&self, task: &Task) -> SResult<()> {
        let Json::Object(args) = &task.args else { return Ok(()) };
        for s in PACKAGE_SPEC {
            if let Some(v) = args.get(s.name) {
                if !crate::modules::kind_ok(s.kind, v) {
                    return Err(SourceError::new(task.arg_span(s.name), format!("argument '{}' of 'package' must be {}, found {v}", s.name, crate::modules::kind_name(s.kind))));
                }
            }
        }
        Ok(())
    }
    async fn plan(&self, ctx: &StepCtx<'_>, args: &Json) -> Result<Plan, StepError> {
        let a: Args = typed("package", args)?;
        let m = match a.use_.as_deref() {
            None | Some("auto") => pkg_mgr(ctx).await?,
            Some(m) => m.to_string(),
        };
        if m != "apt" {
            return Err(StepError::failed(format!("package: this host's package manager is {m}; recover manages packages with apt only")));
        }
        plan_apt(ctx, &Args { use_: None, ..a }, true).await
    }
    async fn apply(&self, ctx: &StepCtx<'_>, plan: Plan) -> Result<Outcome, StepError> {
        apply_apt(ctx, plan).await
    }
}

/// A package manager recover does not drive (yum, dnf, zypper, ...). It loads (a role's RedHat
/// branch is skipped by its `when`), and is refused by name when it reaches a host.
///
/// Returns: nothing: the step fails.
///
/// Check mode: refused as in a real run.
#[derive(Documented)]
pub struct Unsupported(pub &'static str);

#[async_trait]
impl Module for Unsupported {
    fn name(&self) -> &'static str {
        self.0
    }
    fn doc(&self) -> &'static str {
        Self::DOCS
    }
    fn spec(&self) -> &'static [ArgSpec] {
        &[]
    }
    fn free_keys(&self) -> bool {
        true
    }
    async fn plan(&self, ctx: &StepCtx<'_>, _args: &Json) -> Result<Plan, StepError> {
        let m = pkg_mgr(ctx).await.unwrap_or_else(|_| "unknown".into());
        Err(StepError::failed(format!("{}: not supported by recover on this host's package manager ({m}); recover drives apt (Debian) only", self.0)))
    }
}

pub static UNSUPPORTED: &[Unsupported] = &[
    Unsupported("yum"), Unsupported("dnf"), Unsupported("dnf5"), Unsupported("zypper"), Unsupported("pacman"), Unsupported("apk"),
    Unsupported("rpm_key"), Unsupported("yum_repository"), Unsupported("apt_rpm"), Unsupported("pkgng"), Unsupported("portage"),
    Unsupported("homebrew"), Unsupported("openbsd_pkg"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apt_simulation_lines_are_read() {
        let out = "NOTE: This is only a simulation!\nInst rtest-c (1.0 file:/srv [all])\nInst rtest-a [1.0] (1.1 file:/srv [all])\nConf rtest-c (1.0 file:/srv [all])\nRemv old [2.0]\nPurg conf [1.0]\n";
        let s = parse_sim(out);
        assert_eq!(s.len(), 4);
        assert_eq!(s[0], SimStep { op: "Inst".into(), package: "rtest-c".into(), from: None, to: Some("1.0".into()) });
        assert_eq!((s[1].from.as_deref(), s[1].to.as_deref()), (Some("1.0"), Some("1.1")));
        assert_eq!((s[2].op.as_str(), s[2].from.as_deref()), ("Remv", Some("2.0")));
        assert_eq!(split_version("nginx=1.22*"), ("nginx", Some("1.22*")));
        assert_eq!(split_version("nginx"), ("nginx", None));
    }
}
