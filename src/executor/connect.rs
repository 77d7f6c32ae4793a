//! A host's connection for a run: its target resolved as ansible-core resolves it (the host's
//! variables, then the play's keywords, then ansible.cfg), opened once and reused by every
//! play, and its lock taken (DESIGN invariant 8), with the fleet's freeze read in the same
//! round trip for `--automation`.

use std::sync::Arc;

use minijinja::Value;

use super::{vars, ConnMap, PlayEnv};
use crate::inventory::Inventory;
use crate::report::Event;
use crate::safety::lock;
use crate::transport::{Connection, Target};

/// Why a host could not start: gone, or locked by another run.
pub(crate) enum ConnectError {
    Unreachable(String),
    Locked(String),
}

/// The host's connection: the run's (one per host), or opened now and locked.
pub(crate) async fn connect(env: &PlayEnv, host: &str, conns: &ConnMap) -> Result<Arc<Connection>, ConnectError> {
    let ctx = env.sources.inventory_context(host);
    let target = target(env, host, &ctx)?;
    let want = (target.user.clone(), target.local);
    if let Some(c) = conns.lock().await.get(host) {
        let had = env.opened.lock().ok().and_then(|m| m.get(host).cloned());
        if let Some(had) = had {
            if had != want && (want.0.is_some() || want.1) {
                return Err(ConnectError::Unreachable(format!(
                    "host {host}: this play connects as {} ({}), but the run's connection to it is as {} ({}); recover keeps one connection per host: not supported",
                    want.0.as_deref().unwrap_or("the login user"),
                    if want.1 { "local" } else { "ssh" },
                    had.0.as_deref().unwrap_or("the login user"),
                    if had.1 { "local" } else { "ssh" }
                )));
            }
        }
        return Ok(c.clone());
    }
    let conn = Arc::new(Connection::open(&target).await.map_err(|e| ConnectError::Unreachable(format!("host {host} ({}): {e}", target.address)))?);
    if let Ok(mut m) = env.opened.lock() {
        m.insert(host.to_string(), want);
    }
    conns.lock().await.insert(host.to_string(), conn.clone());
    if !env.check {
        take_lock(env, host, &conn, &ctx).await?;
    }
    Ok(conn)
}

/// How to reach the host: its variables, then the play's `remote_user`, `port` and
/// `connection`, then ansible.cfg (`ssh_args`, `timeout`, `host_key_checking`, become settings).
fn target(env: &PlayEnv, host: &str, ctx: &Value) -> Result<Target, ConnectError> {
    let mut target = vars::target(ctx, host).map_err(ConnectError::Unreachable)?;
    let defined = |k: &str| ctx.get_attr(k).ok().is_some_and(|v| !v.is_undefined() && !v.is_none());
    let cfg = crate::ansible_cfg::current();
    if target.user.is_none() {
        target.user = env.play.remote_user.clone().or_else(|| cfg.get("remote_user"));
    }
    if target.port.is_none() {
        target.port = env.play.port.or_else(|| cfg.get("remote_port").and_then(|p| p.trim().parse().ok()));
    }
    if target.key_file.is_none() {
        target.key_file = cfg.paths("private_key_file").first().map(|p| p.display().to_string());
    }
    // ansible.cfg's ssh_args, timeout and host_key_checking, before the host's own arguments.
    let mut args: Vec<String> = Vec::new();
    if let Some(a) = cfg.get("ssh_args") {
        args.push(a);
    }
    if let Some(t) = cfg.get("timeout") {
        args.push(format!("-o ConnectTimeout={}", t.trim()));
    }
    if cfg.flag("host_key_checking") == Some(false) {
        args.push("-o StrictHostKeyChecking=no".into());
    }
    if !args.is_empty() {
        args.extend(target.common_args.take());
        target.common_args = Some(args.join(" "));
    }
    become_settings(env, host, ctx, &mut target)?;
    if !defined("ansible_connection") && env.play.connection.as_deref() == Some("local") {
        target.local = true;
    }
    // Ansible's implicit localhost has `ansible_connection: local` as its own variable.
    if implicit_local(&env.sources.inventory(), host) {
        target.local = true;
        target.user = None;
    }
    Ok(target)
}

/// become_method / _flags / _exe: the host's variables, else the play's keywords, else ansible.cfg.
fn become_settings(env: &PlayEnv, host: &str, ctx: &Value, target: &mut Target) -> Result<(), ConnectError> {
    let defined = |k: &str| ctx.get_attr(k).ok().is_some_and(|v| !v.is_undefined() && !v.is_none());
    let cfg = crate::ansible_cfg::current();
    let kw = &env.play.become_kw;
    let render = |t: &Option<String>| -> Result<Option<String>, ConnectError> {
        match t {
            Some(t) => env.sources.templates.render_str(t, ctx, &env.play.span).map(Some).map_err(|e| ConnectError::Unreachable(format!("host {host}: {e}"))),
            None => Ok(None),
        }
    };
    if !defined("ansible_become_method") {
        if let Some(m) = render(&kw.method)?.or_else(|| cfg.get("become_method")) {
            target.r#become.method = crate::transport::BecomeMethod::parse(&m).map_err(|e| ConnectError::Unreachable(format!("host {host}: {e}")))?;
        }
    }
    if !defined("ansible_become_flags") {
        target.r#become.flags = render(&kw.flags)?.or_else(|| cfg.get("become_flags"));
    }
    if !defined("ansible_become_exe") {
        target.r#become.exe = render(&kw.exe)?.or_else(|| cfg.get("become_exe"));
    }
    Ok(())
}

/// Invariant 8: one operator per host. The lock (`recover_lock_dir`) taken as the host's
/// become user; under `--automation`, the host's freeze record read in the same round trip.
async fn take_lock(env: &PlayEnv, host: &str, conn: &Connection, ctx: &Value) -> Result<(), ConnectError> {
    let var = |k: &str| ctx.get_attr(k).ok().filter(|v| !v.is_undefined() && !v.is_none()).map(|v| crate::template::pyrepr::py_str(&v));
    let dir = var("recover_lock_dir").unwrap_or_else(|| "/run/lock/recover".into());
    let (escalate, user) = vars::become_default(ctx);
    let user = escalate.then(|| user.unwrap_or_else(|| "root".into()));
    let policy = &env.safety.confirmer.policy;
    let freeze_file = policy.automation.then(|| var("recover_freeze_file").unwrap_or_else(|| crate::safety::freeze::DEFAULT_HOST_FREEZE_FILE.into()));
    let mut freeze = lock::HostFreeze::None;
    match lock::acquire(conn, &dir, &env.safety.lock_holder, policy.break_lock, user.clone(), freeze_file.as_deref(), &mut freeze).await {
        Ok(previous) => {
            if let Some((previous, why)) = previous {
                env.reporter.emit(Event::LockBroken { host: host.into(), previous, why });
                if let Some(f) = &freeze_file {
                    freeze = lock::read_freeze(conn, f, user.clone()).await.unwrap_or_else(|e| lock::HostFreeze::Unreadable(format!("the host's freeze record {f} could not be read ({e}): treated as a freeze")));
                }
            }
            if freeze_file.is_some() {
                host_freeze(env, host, freeze);
            }
            conn.set_track(crate::transport::Track { runfile: lock::runfile(&dir), user: user.clone() });
            env.locks.lock().await.insert(host.to_string(), (dir, user));
            Ok(())
        }
        // Another name of a machine this run holds already (a delegation to localhost): it
        // shares the lock, records its own actions beside the first's, and leaves the release
        // to the host that took it (at the end of the run).
        Err(lock::LockError::SameRun) => {
            conn.set_track(crate::transport::Track { runfile: lock::shared_runfile(&dir, host), user: user.clone() });
            Ok(())
        }
        Err(lock::LockError::Held(msg)) => Err(ConnectError::Locked(format!("host {host}: {msg}"))),
        Err(lock::LockError::Lost(msg)) => Err(ConnectError::Unreachable(format!("host {host}: {msg} (taking the host lock)"))),
    }
}

/// What the host's freeze record said: a freeze (or a record that cannot be read) forbids
/// `--automation` there; the shared folder's cache notes it for `recover status`.
fn host_freeze(env: &PlayEnv, host: &str, freeze: lock::HostFreeze) {
    match freeze {
        lock::HostFreeze::None => crate::safety::freeze::cache(host, None),
        lock::HostFreeze::Frozen(f) => {
            env.safety.confirmer.freeze_host(host, format!("automation is frozen on this host since {} by {}: {}", f.since, f.by, f.reason));
            crate::safety::freeze::cache(host, Some(&f));
        }
        lock::HostFreeze::Unreadable(why) => env.safety.confirmer.freeze_host(host, why),
    }
}

/// Names that mean this machine when no inventory host has them (Ansible's implicit localhost).
fn implicit_local(inv: &Inventory, host: &str) -> bool {
    !inv.hosts.contains_key(host) && matches!(host, "localhost" | "127.0.0.1" | "::1")
}
