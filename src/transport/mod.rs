//! How `recover` reaches a host: [`Connection`] runs commands and moves files.
//!
//! Commands run through a persistent remote `sh` per become-user (see
//! [`shell`]): one SSH channel for the whole run instead of one per command
//! (~3 ms a command instead of ~85 ms here). `RECOVER_TRANSPORT=channel`
//! selects the fallback of one SSH channel per command, behind the same API.
//!
//! All quoting lives here and in [`quote`]: modules hand over an argv or a
//! shell string whose values were quoted when it was rendered, never a string
//! they built with `format!` from untrusted values.

mod cmd;
mod inflight;
pub mod quote;
pub mod shell;
pub mod ssh;

use std::collections::HashMap;
use std::sync::Arc;

use inflight::{Inflight, InflightGuard, INFLIGHT, NEXT_INFLIGHT};
use shell::Shell;
use tokio::sync::Mutex;

pub use cmd::*;
pub use inflight::*;

/// A shell's first command: add the sbin folders to PATH, as sudo's secure_path does (admin
/// tools live there); note the shell's process group (`__pg`: a tracked command's record, and
/// what an abort ends) and its user and group ids (`__uid`, `__gid`), from the kernel's own
/// files, with builtins only; and the mode a new file gets from its umask (`__dm`).
pub const SHELL_INIT: &str = "case \":$PATH:\" in *:/usr/sbin:*) ;; *) PATH=\"$PATH:/usr/local/sbin:/usr/sbin:/sbin\"; export PATH ;; esac; \
    __pg=; { read -r _ _ _ _ __pg _ </proc/$$/stat; } 2>/dev/null; [ -n \"$__pg\" ] || __pg=$(ps -o pgid= -p $$ | tr -d ' '); \
    __uid=; __gid=; while read -r __k _ __e _; do case $__k in Uid:) __uid=$__e;; Gid:) __gid=$__e;; esac; done </proc/self/status 2>/dev/null; \
    __dm=$(printf %o $((0666 & ~0$(umask))))";

/// A connection lost with a command sent: say which, and that its outcome on the host is unknown.
fn lost_during(cmd: &Cmd, e: TransportError) -> TransportError {
    match e {
        TransportError::Lost(m) => {
            let mut shown = cmd.display();
            if shown.chars().count() > 200 {
                shown = shown.chars().take(200).collect::<String>() + "...";
            }
            TransportError::Lost(format!("{m}, while running `{shown}` (it may or may not have completed on the host)"))
        }
        other => other,
    }
}

/// Copies a stream into a file, hashing it and reporting progress; returns (sha256, bytes).
async fn pump<R: tokio::io::AsyncRead + Unpin>(mut from: R, to: &mut tokio::fs::File, path: &std::path::Path, progress: &(dyn Fn(u64) + Sync)) -> Result<(String, u64), String> {
    use sha2::Digest;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut hasher = sha2::Sha256::new();
    let mut total = 0u64;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = from.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        to.write_all(&buf[..n]).await.map_err(|e| format!("write {}: {e}", path.display()))?;
        total += n as u64;
        progress(total);
    }
    Ok((format!("{:x}", hasher.finalize()), total))
}

/// What a command gave back.
#[derive(Clone, Debug, Default)]
pub struct Output {
    pub rc: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Output {
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
    pub fn ok(&self) -> bool {
        self.rc == 0
    }
}

/// A transport failure: the host could not be reached or dropped the connection.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("connection lost: {0}")]
    Lost(String),
    #[error("cannot become {user}: {reason}")]
    Become { user: String, reason: String },
}

impl TransportError {
    /// The host went away (or never answered): what a command did there is unknown. A failed
    /// `become` is an answer from the host, not a loss of it.
    pub fn is_lost(&self) -> bool {
        matches!(self, TransportError::Connect(_) | TransportError::Lost(_))
    }
}

/// Where the shells come from.
#[derive(Clone)]
enum Spawner {
    Ssh(Arc<openssh::Session>),
    Local,
}

/// An open connection to one host.
pub struct Connection {
    /// Replaced by [`Connection::reconnect`] (after a reboot).
    spawner: std::sync::RwLock<Spawner>,
    target: Target,
    login_user: Option<String>,
    shells: Mutex<HashMap<Option<String>, Shell>>,
    per_channel: bool,
    fault: Option<FaultHook>,
    track: std::sync::Mutex<Option<Track>>,
    host: String,
    /// Per user: how to become them (decided once: sudo needs no password, or needs it).
    escalations: Mutex<HashMap<String, Escalation>>,
}

/// Fault injection for the test campaign (tests/faults.rs): with `RECOVER_FAULT_HOOK=PROGRAM`,
/// `PROGRAM HOST N COMMAND` runs on the control machine, and is waited for, before the host's
/// N-th remote command (1-based; COMMAND as a plan shows it), so a test can cut the host's SSH,
/// or fill its disk, at an exact point of a playbook.
struct FaultHook {
    program: String,
    host: String,
    count: std::sync::atomic::AtomicUsize,
}

impl FaultHook {
    fn from_env(host: &str) -> Option<FaultHook> {
        let program = std::env::var("RECOVER_FAULT_HOOK").ok().filter(|p| !p.is_empty())?;
        Some(FaultHook { program, host: host.to_string(), count: std::sync::atomic::AtomicUsize::new(0) })
    }

    async fn before_command(&self, what: &str) {
        let n = self.count.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        let _ = tokio::process::Command::new(&self.program).arg(&self.host).arg(n.to_string()).arg(what).status().await;
    }
}

/// How to reach a host, from its `ansible_*` variables.
#[derive(Clone, Debug, Default)]
pub struct Target {
    pub name: String,
    pub address: String,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub key_file: Option<String>,
    pub common_args: Option<String>,
    pub local: bool,
    pub r#become: Become,
    /// Keep the SSH master this long (seconds) after the run, for the next run to reuse.
    pub persist: Option<u64>,
}

impl Connection {
    /// Opens the connection (for SSH: the master, host key checked, with the login user's
    /// shell as its session), and proves it with the shell's first command.
    pub async fn open(target: &Target) -> Result<Connection, TransportError> {
        let per_channel = std::env::var("RECOVER_TRANSPORT").map(|v| v == "channel").unwrap_or(false);
        let login_user = if target.local { std::env::var("USER").ok() } else { target.user.clone() };
        let (spawner, first) = if target.local {
            (Spawner::Local, None)
        } else {
            let opened = ssh::open(target).await?;
            (Spawner::Ssh(opened.session), opened.shell)
        };
        let conn = Connection {
            spawner: std::sync::RwLock::new(spawner),
            target: target.clone(),
            login_user,
            shells: Mutex::new(HashMap::new()),
            per_channel,
            fault: FaultHook::from_env(&target.name),
            track: std::sync::Mutex::new(None),
            host: target.name.clone(),
            escalations: Mutex::new(HashMap::new()),
        };
        match first {
            Some(mut sh) => {
                let ready = tokio::time::timeout(ssh::OPEN_TIMEOUT, sh.run(SHELL_INIT)).await;
                match ready {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return Err(TransportError::Connect(ssh::explain(&sh.ssh_log().unwrap_or_else(|| e.to_string())))),
                    Err(_) => return Err(TransportError::Connect(format!("no answer within {}s (host down or network cut)", ssh::OPEN_TIMEOUT.as_secs()))),
                }
                if per_channel {
                    // The channel fallback runs each command on a channel of its own; the first shell
                    // is kept only as the master's session.
                    conn.shells.lock().await.insert(Some(String::from("\0master")), sh);
                } else {
                    conn.shells.lock().await.insert(None, sh);
                }
            }
            // Through a persistent master: the login shell on a channel of its own.
            None if !target.local && !per_channel => {
                let sh = conn.spawn_shell(None, None).await.map_err(|e| TransportError::Connect(e.to_string()))?;
                conn.shells.lock().await.insert(None, sh);
            }
            None => {}
        }
        Ok(conn)
    }

    /// How this connection becomes other users.
    pub fn become_settings(&self) -> &Become {
        &self.target.r#become
    }

    /// The transport, as it is now.
    fn spawner(&self) -> Spawner {
        self.spawner.read().map(|s| s.clone()).unwrap_or(Spawner::Local)
    }

    /// Drops the shells and the SSH master and connects again, within `timeout` (a host back
    /// from a reboot: `reboot`, `wait_for_connection`). The old shells are not waited for.
    pub async fn reconnect(&self, timeout: std::time::Duration) -> Result<(), TransportError> {
        let mut shells = self.shells.lock().await;
        shells.clear();
        if self.target.local {
            return Ok(());
        }
        let fresh = tokio::time::timeout(timeout, async {
            let opened = ssh::open(&self.target).await?;
            let sh = match opened.shell {
                Some(mut sh) => {
                    sh.run(SHELL_INIT).await.map_err(|e| TransportError::Connect(ssh::explain(&sh.ssh_log().unwrap_or_else(|| e.to_string()))))?;
                    Some(sh)
                }
                None => None,
            };
            Ok::<_, TransportError>((opened.session, sh))
        })
        .await
        .map_err(|_| TransportError::Lost(format!("no connection within {}s", timeout.as_secs())))??;
        if let Ok(mut s) = self.spawner.write() {
            *s = Spawner::Ssh(fresh.0);
        }
        if let Some(sh) = fresh.1 {
            shells.insert(None, sh);
        }
        Ok(())
    }

    /// From now on, tracked commands record their process group in `track.runfile` (set once
    /// the host lock is held; the file lives beside it).
    pub fn set_track(&self, track: Track) {
        if let Ok(mut t) = self.track.lock() {
            *t = Some(track);
        }
    }

    /// Runs a command; `Err` only when the host is gone, never for a non-zero exit.
    pub async fn exec(&self, cmd: &Cmd) -> Result<Output, TransportError> {
        let mut user = self.effective_user(cmd);
        if let Some(f) = &self.fault {
            f.before_command(&cmd.display()).await;
        }
        let track = if cmd.tracked && !self.per_channel { self.track.lock().ok().and_then(|t| t.clone()) } else { None };
        let mut line = None;
        let mut tracked_sudo: Option<String> = None;
        let mut _guard = None;
        if let Some(t) = track {
            // Run by the lock user's shell (it owns the run file); the step's user inside, by sudo.
            let lock_user = match &t.user {
                Some(u) if Some(u) != self.login_user.as_ref() => Some(u.clone()),
                _ => None,
            };
            let sudo_to = user.clone().filter(|u| Some(u) != lock_user.as_ref());
            let esc = match &sudo_to {
                Some(u) => Some(self.escalation(u).await?),
                None => None,
            };
            line = Some(cmd.wrapped_tracked(&t.runfile, esc.as_ref()));
            tracked_sudo = esc.as_ref().filter(|e| e.method == BecomeMethod::Sudo && e.password.is_none()).map(|e| e.user.clone());
            let id = NEXT_INFLIGHT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let session = match &self.spawner() {
                Spawner::Ssh(s) => Some(s.clone()),
                Spawner::Local => None,
            };
            if let Ok(mut v) = INFLIGHT.lock() {
                v.push((id, Inflight { host: self.host.clone(), session, runfile: t.runfile.clone(), sudo: sudo_to.is_some(), user: lock_user.clone(), label: cmd.display() }));
            }
            _guard = Some(InflightGuard(id));
            user = lock_user;
        }
        if self.per_channel {
            return self.exec_channel(cmd, user.as_deref()).await.map_err(|e| lost_during(cmd, e));
        }
        // How to become the user, decided before the shells are held (it may run a command).
        let esc = match &user {
            Some(u) if !self.shells.lock().await.contains_key(&user) => Some(self.escalation(u).await?),
            _ => None,
        };
        let mut shells = self.shells.lock().await;
        if !shells.contains_key(&user) {
            let sh = self.spawn_shell(user.as_deref(), esc.as_ref()).await?;
            shells.insert(user.clone(), sh);
        }
        let sh = shells.get_mut(&user).ok_or_else(|| TransportError::Lost("shell vanished".into()))?;
        let line = line.unwrap_or_else(|| cmd.wrapped());
        match sh.run(&line).await {
            // A tracked command's own `sudo -n` (no become password given) that sudo refused.
            Ok(out) if tracked_sudo.is_some() && out.rc == 1 && out.stderr_str().starts_with("sudo: a password is required") => Err(TransportError::Become {
                user: tracked_sudo.unwrap_or_default(),
                reason: "sudo asks for a password here (is passwordless sudo set up? give the password with -K, ansible_become_password)".into(),
            }),
            Ok(out) => Ok(out),
            Err(e) => {
                shells.remove(&user);
                Err(lost_during(cmd, e))
            }
        }
    }

    /// Writes `data` to `path` (mode `mode` when given), as the command's user.
    pub async fn put(&self, path: &str, data: &[u8], mode: Option<u32>, user: Option<String>) -> Result<Output, TransportError> {
        let mut script = format!("cat > {}", quote::quote(path));
        if let Some(m) = mode {
            script.push_str(&format!(" && chmod {m:o} {}", quote::quote(path)));
        }
        self.exec(&Cmd::shell(script).stdin(data.to_vec()).become_user(user)).await
    }

    /// Reads a whole file (binary-safe). `Ok(None)` when it does not exist.
    pub async fn get(&self, path: &str, user: Option<String>) -> Result<Option<Vec<u8>>, TransportError> {
        let out = self.exec(&Cmd::argv(["cat", "--", path]).become_user(user)).await?;
        Ok(if out.ok() { Some(out.stdout) } else { None })
    }

    /// Streams a remote file into `local` (its own channel, so a large archive is
    /// never held in memory), calling `progress` with the bytes so far. Returns the sha256 and size.
    pub async fn copy_to_local(&self, remote: &str, local: &std::path::Path, user: Option<&str>, progress: &(dyn Fn(u64) + Sync)) -> Result<(String, u64), String> {
        use tokio::io::AsyncWriteExt;
        let inner = vec!["cat".to_string(), "--".to_string(), remote.to_string()];
        let esc = match user.filter(|u| Some(*u) != self.login_user.as_deref()) {
            Some(u) => Some(self.escalation(u).await.map_err(|e| e.to_string())?),
            None => None,
        };
        let argv = match &esc {
            Some(e) => e.argv(&inner),
            None => inner,
        };
        let password = esc.as_ref().and_then(|e| e.password.clone()).map(|p| format!("{p}\n").into_bytes());
        if let Some(f) = &self.fault {
            f.before_command(&format!("copy to this machine: {remote}")).await;
        }
        let mut file = tokio::fs::File::create(local).await.map_err(|e| format!("create {}: {e}", local.display()))?;
        let (sha, total, status_ok) = match &self.spawner() {
            Spawner::Local => {
                let stdin = if password.is_some() { std::process::Stdio::piped() } else { std::process::Stdio::null() };
                let mut child = tokio::process::Command::new(&argv[0]).args(&argv[1..]).stdin(stdin).stdout(std::process::Stdio::piped()).spawn().map_err(|e| e.to_string())?;
                if let (Some(pw), Some(mut i)) = (&password, child.stdin.take()) {
                    i.write_all(pw).await.map_err(|e| e.to_string())?;
                }
                let out = child.stdout.take().ok_or("no stdout")?;
                let (sha, total) = pump(out, &mut file, local, progress).await?;
                (sha, total, child.wait().await.map(|s| s.success()).unwrap_or(false))
            }
            Spawner::Ssh(session) => {
                let stdin = if password.is_some() { openssh::Stdio::piped() } else { openssh::Stdio::null() };
                let mut child = session.command(argv[0].clone()).args(&argv[1..]).stdin(stdin).stdout(openssh::Stdio::piped()).spawn().await.map_err(|e| e.to_string())?;
                if let (Some(pw), Some(mut i)) = (&password, child.stdin().take()) {
                    i.write_all(pw).await.map_err(|e| e.to_string())?;
                }
                let out = child.stdout().take().ok_or("no stdout")?;
                let (sha, total) = pump(out, &mut file, local, progress).await?;
                (sha, total, child.wait().await.map(|s| s.success()).unwrap_or(false))
            }
        };
        file.flush().await.map_err(|e| e.to_string())?;
        if !status_ok {
            return Err(format!("reading {remote} failed"));
        }
        Ok((sha, total))
    }

    /// Closes every shell and the SSH master (a persistent master goes on, idle, for the next
    /// run: only the shells close).
    pub async fn close(self) {
        let mut shells = std::mem::take(&mut *self.shells.lock().await);
        let first = shells.remove(&None);
        for (_, sh) in shells {
            sh.close().await;
        }
        let spawner = self.spawner();
        let persist = self.target.persist.is_some();
        drop(self);
        if persist {
            if let Some(sh) = first {
                sh.close().await;
            }
            return;
        }
        if let Spawner::Ssh(session) = spawner {
            if let Ok(s) = Arc::try_unwrap(session) {
                let _ = s.close().await;
            }
        }
        drop(first);
    }

    /// [`Connection::exec`] behind a box: [`Connection::escalation`] runs commands as the
    /// login user, from inside `exec`.
    fn exec_login<'a>(&'a self, cmd: Cmd) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Output, TransportError>> + Send + 'a>> {
        Box::pin(async move { self.exec(&cmd).await })
    }

    /// How to become `user` on this host, decided once per user. sudo without a become
    /// password: `sudo -n` (never waits). With one: `sudo -n` when the host's sudo asks for
    /// none for this user, else `sudo -k -S -p ''` with the password written to its stdin,
    /// checked once here so a wrong one fails clearly. su: only where it asks no password
    /// (it reads one from a terminal only).
    async fn escalation(&self, user: &str) -> Result<Escalation, TransportError> {
        if let Some(e) = self.escalations.lock().await.get(user) {
            return Ok(e.clone());
        }
        let b = &self.target.r#become;
        let given: Vec<String> = b.flags.as_deref().map(|f| f.split_whitespace().map(str::to_string).collect()).unwrap_or_default();
        let become_err = |reason: String| TransportError::Become { user: user.to_string(), reason };
        let esc = match b.method {
            BecomeMethod::Sudo => {
                let mut base = vec![b.exe.clone().unwrap_or_else(|| "sudo".into())];
                // recover decides -n / -S / -k itself (Ansible's default flags are `-H -S -n`).
                base.extend(given.iter().filter(|f| !matches!(f.as_str(), "-n" | "-S" | "-k" | "--non-interactive" | "--stdin" | "--reset-timestamp")).cloned());
                if b.flags.is_none() {
                    base.push("-H".into());
                }
                let tail = ["-u".to_string(), user.to_string(), "--".to_string()];
                let no_pw: Vec<String> = base.iter().cloned().chain(["-n".to_string()]).chain(tail.iter().cloned()).collect();
                let needs_pw = match &b.password {
                    None => false,
                    Some(_) => !self.exec_login(Cmd::argv(no_pw.iter().cloned().chain(["true".to_string()])).label(format!("does sudo ask a password for {user}?"))).await?.ok(),
                };
                if !needs_pw {
                    Escalation { method: BecomeMethod::Sudo, words: no_pw, user: user.to_string(), password: None }
                } else {
                    let pw = b.password.clone().unwrap_or_default();
                    let words: Vec<String> = base.iter().cloned().chain(["-k", "-S", "-p", ""].map(String::from)).chain(tail.iter().cloned()).collect();
                    let check = format!("printf '%s\\n' {} | {} true", quote::quote(&pw), quote::join(&words));
                    let out = self.exec_login(Cmd::shell(check).label(format!("check the become password for {user}"))).await?;
                    if !out.ok() {
                        let why = out.stderr_str().replace(&pw, crate::secrets::MASK);
                        return Err(become_err(format!("sudo did not accept the become password: {}", why.trim())));
                    }
                    Escalation { method: BecomeMethod::Sudo, words, user: user.to_string(), password: Some(pw) }
                }
            }
            BecomeMethod::Su => {
                let mut words = vec![b.exe.clone().unwrap_or_else(|| "su".into())];
                words.extend(given.iter().cloned());
                words.extend(["-s".to_string(), "/bin/sh".to_string()]);
                let esc = Escalation { method: BecomeMethod::Su, words, user: user.to_string(), password: None };
                let out = self.exec_login(Cmd::shell(format!("{} </dev/null", esc.line("true"))).label(format!("can su become {user}?"))).await?;
                if !out.ok() {
                    return Err(become_err(format!(
                        "su did not run as {user} without a password ({}); recover does not type a password into su (su reads it from a terminal): log in as root, or use become_method: sudo",
                        out.stderr_str().trim()
                    )));
                }
                esc
            }
        };
        self.escalations.lock().await.insert(user.to_string(), esc.clone());
        Ok(esc)
    }

    fn effective_user(&self, cmd: &Cmd) -> Option<String> {
        match &cmd.become_user {
            Some(u) if Some(u) != self.login_user.as_ref() => Some(u.clone()),
            _ => None,
        }
    }

    async fn spawn_shell(&self, user: Option<&str>, esc: Option<&Escalation>) -> Result<Shell, TransportError> {
        let argv = match esc {
            Some(e) => e.argv(&["sh".to_string()]),
            None => vec!["sh".to_string()],
        };
        let sh = match &self.spawner() {
            Spawner::Local => Shell::spawn_local(&argv)?,
            Spawner::Ssh(session) => Shell::spawn_ssh(session.clone(), &argv).await?,
        };
        let mut sh = sh;
        if let Some(pw) = esc.and_then(|e| e.password.as_deref()) {
            sh.write_raw(format!("{pw}\n").as_bytes()).await?;
        }
        // Prove the shell works (and that sudo did not ask for a password).
        match sh.run(SHELL_INIT).await {
            Ok(_) => Ok(sh),
            Err(e) => Err(match user {
                Some(u) => TransportError::Become {
                    user: u.to_string(),
                    reason: match esc.map(|e| e.method) {
                        Some(BecomeMethod::Su) => format!("{e} (su did not start a shell as {u})"),
                        _ => format!("{e} (is passwordless sudo set up? without a become password (-K, ansible_become_password) recover runs `sudo -n`, which never waits for one)"),
                    },
                },
                None => e,
            }),
        }
    }

    async fn exec_channel(&self, cmd: &Cmd, user: Option<&str>) -> Result<Output, TransportError> {
        let inner = vec!["sh".to_string(), "-c".to_string(), cmd.wrapped()];
        let argv = match user {
            Some(u) => {
                let esc = self.escalation(u).await?;
                if esc.password.is_some() {
                    return Err(TransportError::Become { user: u.to_string(), reason: "RECOVER_TRANSPORT=channel does not send a become password; use the default transport".into() });
                }
                esc.argv(&inner)
            }
            None => inner,
        };
        match &self.spawner() {
            Spawner::Local => shell::run_local_once(&argv).await,
            Spawner::Ssh(session) => ssh::run_channel(session, &argv).await,
        }
    }
}
