//! SSH through the system OpenSSH client (the `openssh` crate): one master
//! connection per host for the whole run, so `~/.ssh/config`, agents,
//! `ProxyJump` and `known_hosts` work as operators expect.
//!
//! Host keys are always checked: unknown keys are accepted and recorded
//! (`accept-new`), a changed key stops the host. `StrictHostKeyChecking=no` in
//! `ansible_ssh_common_args` is honoured only with a warning.

use std::sync::Arc;
use std::time::Duration;

use openssh::{ControlPersist, KnownHosts, Session, SessionBuilder};

use super::{Output, Target, TransportError};

/// Opens the master connection to `target`.
pub async fn connect(target: &Target) -> Result<Session, TransportError> {
    let mut b = SessionBuilder::default();
    b.known_hosts_check(KnownHosts::Add)
        // The master ends by itself once idle, so a run that is killed leaves no
        // connection behind; while recover runs, its shell session keeps it busy.
        .control_persist(ControlPersist::IdleFor(std::num::NonZeroUsize::new(30).unwrap_or(std::num::NonZeroUsize::MIN)))
        .connect_timeout(Duration::from_secs(10))
        .server_alive_interval(Duration::from_secs(5))
        .control_directory(std::env::temp_dir());
    if let Some(u) = &target.user {
        b.user(u.clone());
    }
    if let Some(p) = target.port {
        b.port(p);
    }
    if let Some(k) = &target.key_file {
        b.keyfile(k);
    }
    let mut extra: Vec<(String, String)> = Vec::new();
    if let Some(args) = &target.common_args {
        let words = shell_words::split(args).map_err(|e| TransportError::Connect(format!("ansible_ssh_common_args: {e}")))?;
        let mut it = words.into_iter();
        while let Some(w) = it.next() {
            let opt = if w == "-o" { it.next() } else { w.strip_prefix("-o").map(str::to_string) };
            let Some(opt) = opt else {
                if w == "-J" {
                    if let Some(j) = it.next() {
                        b.jump_hosts([j]);
                    }
                }
                continue;
            };
            let (k, v) = opt.split_once('=').map(|(k, v)| (k.trim().to_string(), v.trim().to_string())).unwrap_or((opt.clone(), String::new()));
            match k.to_lowercase().as_str() {
                "userknownhostsfile" => {
                    b.user_known_hosts_file(v);
                }
                "stricthostkeychecking" => {
                    let mode = match v.to_lowercase().as_str() {
                        "no" | "off" => {
                            eprintln!("warning: host {}: StrictHostKeyChecking=no from ansible_ssh_common_args: host keys are NOT checked", target.name);
                            KnownHosts::Accept
                        }
                        "yes" => KnownHosts::Strict,
                        _ => KnownHosts::Add,
                    };
                    b.known_hosts_check(mode);
                }
                "proxyjump" => {
                    b.jump_hosts([v]);
                }
                "connecttimeout" => {
                    if let Ok(secs) = v.parse::<u64>() {
                        b.connect_timeout(Duration::from_secs(secs));
                    }
                }
                _ => extra.push((k, v)),
            }
        }
    }
    let _config_dir;
    if !extra.is_empty() {
        // Other -o options go into a generated config that then includes the user's own.
        let dir = tempfile_dir()?;
        let path = dir.join("ssh_config");
        let mut text = String::from("Host *\n");
        for (k, v) in &extra {
            text.push_str(&format!("  {k} {v}\n"));
        }
        if let Some(home) = std::env::var_os("HOME") {
            let user_cfg = std::path::Path::new(&home).join(".ssh/config");
            if user_cfg.exists() {
                text.push_str(&format!("Include {}\n", user_cfg.display()));
            }
        }
        std::fs::write(&path, text).map_err(|e| TransportError::Connect(format!("write ssh config: {e}")))?;
        b.config_file(&path);
        _config_dir = Some(dir);
    }
    let dest = if target.address.contains(':') { format!("[{}]", target.address) } else { target.address.clone() };
    b.connect_mux(&dest).await.map_err(|e| TransportError::Connect(explain(&e)))
}

fn tempfile_dir() -> Result<std::path::PathBuf, TransportError> {
    let dir = std::env::temp_dir().join(format!("recover-ssh-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).map_err(|e| TransportError::Connect(format!("create {}: {e}", dir.display())))?;
    Ok(dir)
}

/// OpenSSH's error text, with the likely cause for the common ones.
fn explain(e: &openssh::Error) -> String {
    let text = format!("{e}");
    let detail = std::error::Error::source(e).map(|s| s.to_string()).unwrap_or_default();
    let all = format!("{text} {detail}");
    let hint = if all.contains("REMOTE HOST IDENTIFICATION HAS CHANGED") || all.contains("Host key verification failed") {
        " (the host key does not match known_hosts: check the host is who you think, then remove the old key with ssh-keygen -R)"
    } else if all.contains("Connection refused") {
        " (nothing listens on the SSH port: is sshd running?)"
    } else if all.contains("timed out") {
        " (no answer: host down or network cut)"
    } else if all.contains("Permission denied") {
        " (authentication failed: check ansible_user and the key)"
    } else {
        ""
    };
    format!("{}{hint}", if detail.is_empty() { text } else { format!("{text}: {detail}") }.trim())
}

/// Runs `argv` on a new SSH channel (the per-command fallback).
pub async fn run_channel(session: &Arc<Session>, argv: &[String]) -> Result<Output, TransportError> {
    let out = session.command(argv[0].clone()).args(&argv[1..]).output().await.map_err(|e| TransportError::Lost(e.to_string()))?;
    Ok(Output { rc: out.status.code().unwrap_or(-1), stdout: out.stdout, stderr: out.stderr })
}
