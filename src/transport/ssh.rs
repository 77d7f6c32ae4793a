//! SSH through the system OpenSSH client, so `~/.ssh/config`, agents, `ProxyJump` and
//! `known_hosts` work as operators expect.
//!
//! One `ssh` process per host is at once the connection's master (`-M`, its control socket in a
//! 0700 folder) and the host's first shell: the handshake and the shell session are one
//! connection set-up, as the floor's `ssh host sh` is. Every other channel (another user's
//! shell, a file streamed back, the kill of an aborted command) is opened through the control
//! socket, in process (the `openssh` crate's native mux), never by a new `ssh`.
//!
//! With `recover_ssh_persist` (or `ssh_persist:` in recover.yml, `RECOVER_SSH_PERSIST`), the
//! master outlives the run, idle up to that long, its socket in the operator's own 0700 folder:
//! the next run within that time opens its shells through it and pays no handshake.
//! `recover disconnect` closes them.
//!
//! Host keys are always checked: unknown keys are accepted and recorded
//! (`accept-new`), a changed key stops the host. `StrictHostKeyChecking=no` in
//! `ansible_ssh_common_args` is honoured only with a warning.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use openssh::Session;

use super::shell::Shell;
use super::{Output, Target, TransportError};

/// A host's connection as opened: the control socket's session (for every other channel), the
/// first shell (`None` when the master was already there), and what must live as long as the
/// master is ours.
pub struct Opened {
    pub session: Arc<Session>,
    pub shell: Option<Shell>,
}

/// The folder of persistent masters' sockets: the operator's own, 0700.
pub fn persist_dir() -> PathBuf {
    let base = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from).filter(|p| p.is_dir()).or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache"))).unwrap_or_else(std::env::temp_dir);
    base.join("recover-ssh")
}

/// Makes `dir` (0700) and refuses it when another user owns it or others may write to it: a
/// control socket there is a way in to every host it reaches.
fn private_dir(dir: &Path) -> Result<(), TransportError> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    let _ = std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir);
    let md = std::fs::symlink_metadata(dir).map_err(|e| TransportError::Connect(format!("cannot make {}: {e}", dir.display())))?;
    let me = unsafe { libc::geteuid() };
    if !md.is_dir() || md.uid() != me || md.permissions().mode() & 0o077 != 0 {
        return Err(TransportError::Connect(format!("{} must be a folder of this user's with mode 0700 (it holds SSH control sockets)", dir.display())));
    }
    Ok(())
}

/// The name of a persistent master's socket: a digest of everything that decides where and how
/// the host is reached, so a changed inventory never reuses another connection.
fn persist_name(target: &Target) -> String {
    let id = format!("{}\0{:?}\0{:?}\0{:?}\0{:?}", target.address, target.port, target.user, target.key_file, target.common_args);
    crate::digest::sha256_hex(id.as_bytes())[..20].to_string()
}

/// The ssh options for `target`: what the master is started with.
fn options(target: &Target, dir: &Path) -> Result<Vec<String>, TransportError> {
    // ssh takes the first value it is given for an option: the inventory's own come first.
    let mut v: Vec<String> = Vec::new();
    let mut known = "accept-new".to_string();
    if let Some(p) = target.port {
        v.extend(["-p".into(), p.to_string()]);
    }
    if let Some(u) = &target.user {
        v.extend(["-l".into(), u.clone()]);
    }
    if let Some(k) = &target.key_file {
        v.extend(["-o".into(), "IdentitiesOnly=yes".into(), "-i".into(), k.clone()]);
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
                        v.extend(["-J".into(), j]);
                    }
                }
                continue;
            };
            let (k, val) = opt.split_once('=').map(|(k, v)| (k.trim().to_string(), v.trim().to_string())).unwrap_or((opt.clone(), String::new()));
            match k.to_lowercase().as_str() {
                "userknownhostsfile" | "proxyjump" | "connecttimeout" | "proxycommand" | "hostkeyalgorithms" | "kexalgorithms" | "ciphers" | "identityagent" => {
                    v.extend(["-o".into(), format!("{k}={val}")]);
                }
                "stricthostkeychecking" => {
                    known = match val.to_lowercase().as_str() {
                        "no" | "off" => {
                            eprintln!("warning: host {}: StrictHostKeyChecking=no from ansible_ssh_common_args: host keys are NOT checked", target.name);
                            "no".into()
                        }
                        "yes" => "yes".into(),
                        _ => "accept-new".into(),
                    };
                }
                // The control options are recover's own.
                "controlmaster" | "controlpath" | "controlpersist" => {}
                _ => extra.push((k, val)),
            }
        }
    }
    v.extend(["-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o", "ServerAliveInterval=5"].map(String::from));
    v.extend(["-o".into(), format!("StrictHostKeyChecking={known}")]);
    if !extra.is_empty() {
        // Other -o options go into a generated config that then includes the user's own.
        let path = dir.join("ssh_config");
        let mut text = String::from("Host *\n");
        for (k, val) in &extra {
            text.push_str(&format!("  {k} {val}\n"));
        }
        if let Some(home) = std::env::var_os("HOME") {
            let user_cfg = Path::new(&home).join(".ssh/config");
            if user_cfg.exists() {
                text.push_str(&format!("Include {}\n", user_cfg.display()));
            }
        }
        std::fs::write(&path, text).map_err(|e| TransportError::Connect(format!("write ssh config: {e}")))?;
        v.extend(["-F".into(), path.display().to_string()]);
    }
    Ok(v)
}

/// A private folder for this run's control socket, removed when the master ends.
struct RunDir(PathBuf);

impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Opens `target`: through its persistent master when one is up, else by starting the master
/// with the first shell as its session.
pub async fn open(target: &Target) -> Result<Opened, TransportError> {
    let dest = if target.address.contains(':') { format!("[{}]", target.address) } else { target.address.clone() };
    let (dir, ctl, run_dir) = match target.persist {
        Some(_) => {
            let dir = persist_dir();
            private_dir(&dir)?;
            let ctl = dir.join(persist_name(target));
            if ctl.exists() {
                let session = Session::resume_mux(ctl.clone().into_boxed_path(), None);
                if session.check().await.is_ok() {
                    return Ok(Opened { session: Arc::new(session), shell: None });
                }
                // A socket whose master does not answer: asked to exit, then gone.
                let _ = session.close().await;
                let _ = std::fs::remove_file(&ctl);
            }
            (dir.clone(), ctl, None)
        }
        None => {
            let dir = std::env::temp_dir().join(format!("recover-ssh-{}", uuid::Uuid::new_v4().simple()));
            private_dir(&dir)?;
            (dir.clone(), dir.join("ctl"), Some(RunDir(dir)))
        }
    };
    let log = dir.join(format!("{}.log", ctl.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()));
    let persist = match target.persist {
        Some(secs) => format!("ControlPersist={secs}s"),
        None => "ControlPersist=no".into(),
    };
    let mut argv: Vec<String> = vec!["ssh".into(), "-T".into(), "-E".into(), log.display().to_string(), "-M".into(), "-S".into(), ctl.display().to_string(), "-o".into(), persist];
    argv.extend(options(target, &dir)?);
    argv.extend([dest, "sh".into()]);
    let mut cmd = tokio::process::Command::new(&argv[0]);
    cmd.args(&argv[1..]);
    // A persistent master goes on alone once the run's shell ends; a run's own dies with it.
    let shell = Shell::spawn_process(cmd, target.persist.is_none(), Box::new(run_dir), Some(log))?;
    let session = Session::resume_mux(ctl.into_boxed_path(), None);
    Ok(Opened { session: Arc::new(session), shell: Some(shell) })
}

/// The text of a failed connection, with the likely cause for the common ones.
pub fn explain(text: &str) -> String {
    let hint = if text.contains("REMOTE HOST IDENTIFICATION HAS CHANGED") || text.contains("Host key verification failed") {
        " (the host key does not match known_hosts: check the host is who you think, then remove the old key with ssh-keygen -R)"
    } else if text.contains("Connection refused") {
        " (nothing listens on the SSH port: is sshd running?)"
    } else if text.contains("timed out") {
        " (no answer: host down or network cut)"
    } else if text.contains("Permission denied") {
        " (authentication failed: check ansible_user and the key)"
    } else {
        ""
    };
    let t = text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with("Warning: Permanently added")).collect::<Vec<_>>().join("; ");
    format!("{}{hint}", if t.is_empty() { "ssh exited".to_string() } else { t })
}

/// Closes the persistent masters (`recover disconnect`): each socket in the folder, or those
/// of `only` (targets). Returns how many were closed.
pub async fn disconnect(only: Option<&[Target]>) -> Result<usize, String> {
    let dir = persist_dir();
    let names: Option<Vec<String>> = only.map(|ts| ts.iter().map(persist_name).collect());
    let Ok(rd) = std::fs::read_dir(&dir) else { return Ok(0) };
    let mut n = 0;
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with(".log") || names.as_ref().is_some_and(|ns| !ns.contains(&name)) {
            continue;
        }
        let session = Session::resume_mux(e.path().into_boxed_path(), None);
        if session.check().await.is_ok() && session.close().await.is_ok() {
            n += 1;
        }
        let _ = std::fs::remove_file(e.path());
        let _ = std::fs::remove_file(dir.join(format!("{name}.log")));
    }
    Ok(n)
}

/// Runs `argv` on a new SSH channel (the per-command fallback).
pub async fn run_channel(session: &Arc<Session>, argv: &[String]) -> Result<Output, TransportError> {
    let out = session.command(argv[0].clone()).args(&argv[1..]).output().await.map_err(|e| TransportError::Lost(e.to_string()))?;
    Ok(Output { rc: out.status.code().unwrap_or(-1), stdout: out.stdout, stderr: out.stderr })
}

/// How long a master may take to answer its first command.
pub const OPEN_TIMEOUT: Duration = Duration::from_secs(40);
