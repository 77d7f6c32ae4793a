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

pub mod quote;
pub mod shell;
pub mod ssh;

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine as _;
use tokio::sync::Mutex;

use shell::Shell;

/// How a host's connection becomes another user: `sudo` (default) or `su`, the program
/// (`become_exe`), extra flags (`become_flags`) and the password (`ansible_become_password`,
/// `-K`), which is written to the become program's stdin, never put on a command line.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Become {
    pub method: BecomeMethod,
    pub exe: Option<String>,
    pub flags: Option<String>,
    pub password: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum BecomeMethod {
    #[default]
    Sudo,
    Su,
}

impl BecomeMethod {
    pub fn parse(s: &str) -> Result<BecomeMethod, String> {
        match s.trim() {
            "sudo" => Ok(BecomeMethod::Sudo),
            "su" => Ok(BecomeMethod::Su),
            other => Err(format!("become_method {other:?} is not supported by recover (sudo or su)")),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            BecomeMethod::Sudo => "sudo",
            BecomeMethod::Su => "su",
        }
    }
}

/// How to run something as a user on one host: the words before the command (sudo), or the
/// words around it (su), and the password line to write first.
#[derive(Clone, Debug)]
struct Escalation {
    method: BecomeMethod,
    /// sudo: `sudo FLAGS -n|-k -S -p '' -H -u USER --`; su: `su FLAGS -s /bin/sh`.
    words: Vec<String>,
    user: String,
    password: Option<String>,
}

impl Escalation {
    /// The argv that runs `inner` (an argv) as the user.
    fn argv(&self, inner: &[String]) -> Vec<String> {
        let mut v = self.words.clone();
        match self.method {
            BecomeMethod::Sudo => v.extend(inner.iter().cloned()),
            BecomeMethod::Su => {
                v.extend(["-c".to_string(), quote::join(inner), self.user.clone()]);
            }
        }
        v
    }
    /// The shell text that runs the shell text `inner` as the user.
    fn line(&self, inner: &str) -> String {
        match self.method {
            BecomeMethod::Sudo => format!("{} {inner}", quote::join(&self.words)),
            BecomeMethod::Su => format!("{} -c {} {}", quote::join(&self.words), quote::quote(inner), quote::quote(&self.user)),
        }
    }
}

/// `-K`: the become password for every host whose variables do not give one.
static DEFAULT_BECOME_PASSWORD: std::sync::OnceLock<String> = std::sync::OnceLock::new();

pub fn set_default_become_password(p: String) {
    let _ = DEFAULT_BECOME_PASSWORD.set(p);
}

pub fn default_become_password() -> Option<String> {
    DEFAULT_BECOME_PASSWORD.get().cloned()
}

/// What to run: an argv (each word passed as is) or a shell script.
#[derive(Clone, Debug, PartialEq)]
pub enum Script {
    Argv(Vec<String>),
    Shell(String),
}

/// A command for a host, with the user to run it as and optional stdin.
#[derive(Clone, Debug)]
pub struct Cmd {
    pub script: Script,
    /// Run as this user (`sudo -n -u USER`); `None` is the login user.
    pub become_user: Option<String>,
    pub stdin: Option<Vec<u8>>,
    /// Kill the command after this many seconds (exit status 124).
    pub timeout: Option<u64>,
    /// How to show the command when its script is an implementation detail.
    pub label: Option<String>,
    /// Run in a shell process of its own (`sh -c`), as Ansible's `shell` module does: for
    /// scripts a person wrote, which may use `$$` or signal their own shell. recover's own
    /// scripts run in a subshell of the persistent shell (see [`Cmd::wrapped`]).
    pub own_shell: bool,
    /// An action (a step's change, a backup): run in a process group of its own whose id is
    /// recorded on the host beside the lock, so an aborted run can kill it there and a later
    /// run knows it may still be running (see [`Connection::set_track`]).
    pub tracked: bool,
}

impl Cmd {
    pub fn argv<S: Into<String>>(words: impl IntoIterator<Item = S>) -> Cmd {
        Cmd { script: Script::Argv(words.into_iter().map(Into::into).collect()), become_user: None, stdin: None, timeout: None, label: None, own_shell: false, tracked: false }
    }
    pub fn shell(script: impl Into<String>) -> Cmd {
        Cmd { script: Script::Shell(script.into()), become_user: None, stdin: None, timeout: None, label: None, own_shell: false, tracked: false }
    }
    pub fn become_user(mut self, user: Option<String>) -> Cmd {
        self.become_user = user;
        self
    }
    pub fn stdin(mut self, data: Vec<u8>) -> Cmd {
        self.stdin = Some(data);
        self
    }
    pub fn label(mut self, label: impl Into<String>) -> Cmd {
        self.label = Some(label.into());
        self
    }
    pub fn timeout(mut self, secs: Option<u64>) -> Cmd {
        self.timeout = secs;
        self
    }
    /// A script a person wrote (`shell:`, `recover exec`): its own `sh -c`, so `$$` is its own.
    pub fn own_shell(mut self) -> Cmd {
        self.own_shell = true;
        self
    }
    /// An action to track (see [`Cmd::tracked`]).
    pub fn tracked(mut self) -> Cmd {
        self.tracked = true;
        self
    }
    /// The script as one shell line (argv words quoted).
    pub fn line(&self) -> String {
        match &self.script {
            Script::Argv(words) => quote::join(words),
            Script::Shell(s) => s.clone(),
        }
    }
    /// How the command reads in a plan or a log.
    pub fn display(&self) -> String {
        let text = self.label.clone().unwrap_or_else(|| self.line());
        match &self.become_user {
            Some(u) => format!("[as {u}] {text}"),
            None => text,
        }
    }
    /// The full line the remote shell runs, with timeout and stdin.
    ///
    /// The script goes in as one quoted word, so a syntax error in it cannot reach the
    /// persistent shell's own parser. It runs as `( eval WORD )`: a subshell keeps `exit`,
    /// `cd`, `set -e`, traps and variables from leaking into the next command, and costs
    /// a fork, where `sh -c WORD` cost a fork and an exec of a new shell (measured in
    /// BENCHMARKS.md: that exec was the largest cost of a command on a busy host).
    /// `timeout` needs a program to run, so a command with one still gets `sh -c`, and so does
    /// a script a person wrote ([`Cmd::own_shell`]): in a subshell `$$` would be the persistent
    /// shell's, shared by every command, and `kill $$` would end the connection's shell.
    /// The line for a tracked command, run by the lock user's shell: `setsid` gives it a
    /// process group of its own (its leader's pid is the group id), written to `runfile` with
    /// its label while it runs and cleared (`true`, a builtin: no exec, and a failed
    /// redirection cannot end the shell) when it ends. `esc` runs the script as another user
    /// inside that group.
    ///
    /// The script never appears on a command line (where `ps` on the host would show it, and
    /// with it a file's content or a secret): the program reads it from a here-document on
    /// fd 3 (`sh -c '. /dev/fd/3'`), or, through sudo (which closes every fd above 2), as the
    /// first line of its stdin (base64), read by the shell's own `read` before the command's
    /// data.
    fn wrapped_tracked(&self, runfile: &str, esc: Option<&Escalation>) -> String {
        let rf = quote::quote(runfile);
        let mut shown = self.display().replace(['\n', '\r'], " ");
        if shown.chars().count() > 200 {
            shown = shown.chars().take(200).collect::<String>() + "...";
        }
        let tail = format!("__p=$!; printf '%s %s\\n' \"$__p\" {} > {rf} 2>/dev/null; wait \"$__p\"; __r=$?; true > {rf} 2>/dev/null; (exit $__r)", quote::quote(&shown));
        let timeout = |inner: &str| match self.timeout {
            Some(t) => format!("timeout -k 5 {t} {inner}"),
            None => inner.to_string(),
        };
        match esc {
            None => {
                let (tag, prog) = (shell::marker(), format!("setsid {}", timeout("sh -c '. /dev/fd/3'")));
                let script = format!("{}\n{tag}", self.line());
                match &self.stdin {
                    Some(data) => {
                        let dtag = shell::marker();
                        format!("base64 -d <<'{dtag}' | {prog} 3<<'{tag}' & {tail}\n{}\n{dtag}\n{script}", b64_lines(data))
                    }
                    None => format!("{prog} 3<<'{tag}' </dev/null & {tail}\n{script}"),
                }
            }
            Some(e) => {
                use base64::Engine as _;
                let inner = timeout("sh -c 'IFS= read -r __s && eval \"$(printf %s \"$__s\" | base64 -d)\"'");
                let prog = format!("setsid {}", e.line(&inner));
                // The become password first (sudo reads it), then the script's line, then the data.
                let pw = e.password.as_deref().map(|p| format!("printf '%s\\n' {}; ", quote::quote(p))).unwrap_or_default();
                let first = format!("printf '%s\\n' {}; ", base64::engine::general_purpose::STANDARD.encode(self.line()));
                match &self.stdin {
                    Some(data) => {
                        let tag = shell::marker();
                        format!("{{ {pw}{first}base64 -d; }} <<'{tag}' | {prog} & {tail}\n{}\n{tag}", b64_lines(data))
                    }
                    None => format!("{{ {pw}{first}}} | {prog} & {tail}"),
                }
            }
        }
    }

    fn wrapped(&self) -> String {
        // A program of its own (`timeout`, or a person's script that needs its own `$$`) reads
        // the script from fd 3, never from its command line.
        let (line, script) = match self.timeout {
            Some(t) => (format!("timeout -k 5 {t} sh -c '. /dev/fd/3'"), true),
            None if self.own_shell => ("sh -c '. /dev/fd/3'".to_string(), true),
            None => (format!("( eval {} )", quote::quote(&self.line())), false),
        };
        let tag = shell::marker();
        let fd3 = if script { format!(" 3<<'{tag}'") } else { String::new() };
        let body = if script { format!("\n{}\n{tag}", self.line()) } else { String::new() };
        match &self.stdin {
            Some(data) => {
                let dtag = shell::marker();
                format!("base64 -d <<'{dtag}' | {line}{fd3}\n{}\n{dtag}{body}", b64_lines(data))
            }
            None => format!("{line}{fd3} </dev/null{body}"),
        }
    }
}

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

fn b64_lines(data: &[u8]) -> String {
    let enc = base64::engine::general_purpose::STANDARD.encode(data);
    enc.as_bytes().chunks(76).map(|c| std::str::from_utf8(c).unwrap_or_default()).collect::<Vec<_>>().join("\n")
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

/// Where a connection records its tracked commands: the run file beside the host lock, and
/// the user the lock (and the file) belongs to.
#[derive(Clone, Debug)]
pub struct Track {
    pub runfile: String,
    pub user: Option<String>,
}

/// A tracked command under way on a host, for [`kill_inflight`].
struct Inflight {
    host: String,
    session: Option<Arc<openssh::Session>>,
    runfile: String,
    /// Who may signal it: the lock user, or root through sudo when it runs as another user.
    sudo: bool,
    user: Option<String>,
    label: String,
}

static INFLIGHT: std::sync::Mutex<Vec<(u64, Inflight)>> = std::sync::Mutex::new(Vec::new());
static NEXT_INFLIGHT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Removes its entry from [`INFLIGHT`] when the command ends (or its future is dropped).
struct InflightGuard(u64);

impl Drop for InflightGuard {
    fn drop(&mut self) {
        if let Ok(mut v) = INFLIGHT.lock() {
            v.retain(|(id, _)| *id != self.0);
        }
    }
}

/// A script that prints `PGID LABEL` when the tracked command recorded in `runfile` (see
/// [`Cmd::wrapped_tracked`], which writes it) is still running, and nothing otherwise.
pub fn runfile_live_script(runfile: &str) -> String {
    let rf = quote::quote(runfile);
    format!("read p rest < {rf} 2>/dev/null || exit 0; [ -n \"$p\" ] || exit 0; ps -p \"$p\" >/dev/null 2>&1 && printf '%s %s' \"$p\" \"$rest\"; exit 0")
}

/// How an aborted run left a tracked command: killed (confirmed gone), or maybe still running.
#[derive(Debug)]
pub struct KillReport {
    pub host: String,
    pub label: String,
    pub killed: bool,
}

/// Kills, on their hosts, the tracked commands this process has under way (a second Ctrl-C):
/// TERM to the process group, KILL after 2 s, each over a channel of its own. Each report says
/// whether the group is confirmed gone; `None` for a host that did not answer within `limit`.
pub async fn kill_inflight(limit: std::time::Duration) -> Vec<KillReport> {
    let items: Vec<Inflight> = INFLIGHT.lock().map(|mut v| v.drain(..).map(|(_, i)| i).collect()).unwrap_or_default();
    let mut reports = Vec::new();
    let mut tasks = Vec::new();
    for i in items {
        tasks.push(tokio::spawn(async move {
            let rf = quote::quote(&i.runfile);
            let kill = if i.sudo { "sudo -n kill" } else { "kill" };
            let script = format!(
                "read p rest < {rf} 2>/dev/null || exit 0; [ -n \"$p\" ] || exit 0; {kill} -TERM -\"$p\" 2>/dev/null; \
                 for i in 1 2 3 4 5 6 7 8 9 10; do ps -p \"$p\" >/dev/null 2>&1 || {{ true > {rf} 2>/dev/null; exit 0; }}; sleep 0.2; done; \
                 {kill} -KILL -\"$p\" 2>/dev/null; sleep 0.3; ps -p \"$p\" >/dev/null 2>&1 && exit 1; true > {rf} 2>/dev/null; exit 0"
            );
            let mut argv: Vec<String> = Vec::new();
            if let Some(u) = &i.user {
                argv.extend(["sudo", "-n", "-H", "-u", u, "--"].map(String::from));
            }
            argv.extend(["sh".to_string(), "-c".to_string(), script]);
            let out = match &i.session {
                Some(s) => tokio::time::timeout(limit, ssh::run_channel(s, &argv)).await.ok().and_then(Result::ok),
                None => tokio::time::timeout(limit, shell::run_local_once(&argv)).await.ok().and_then(Result::ok),
            };
            KillReport { host: i.host, label: i.label, killed: out.is_some_and(|o| o.ok()) }
        }));
    }
    for t in tasks {
        if let Ok(r) = t.await {
            reports.push(r);
        }
    }
    reports
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
}

impl Connection {
    /// Opens the connection (for SSH: the master connection, host key checked).
    pub async fn open(target: &Target) -> Result<Connection, TransportError> {
        let per_channel = std::env::var("RECOVER_TRANSPORT").map(|v| v == "channel").unwrap_or(false);
        let spawner = if target.local { Spawner::Local } else { Spawner::Ssh(Arc::new(ssh::connect(target).await?)) };
        let login_user = if target.local { std::env::var("USER").ok() } else { target.user.clone() };
        Ok(Connection {
            spawner: std::sync::RwLock::new(spawner),
            target: target.clone(),
            login_user,
            shells: Mutex::new(HashMap::new()),
            per_channel,
            fault: FaultHook::from_env(&target.name),
            track: std::sync::Mutex::new(None),
            host: target.name.clone(),
            escalations: Mutex::new(HashMap::new()),
        })
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
        let session = tokio::time::timeout(timeout, ssh::connect(&self.target)).await.map_err(|_| TransportError::Lost(format!("no connection within {}s", timeout.as_secs())))??;
        if let Ok(mut s) = self.spawner.write() {
            *s = Spawner::Ssh(Arc::new(session));
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

    /// Closes every shell and the SSH master.
    pub async fn close(self) {
        let shells = std::mem::take(&mut *self.shells.lock().await);
        for (_, sh) in shells {
            sh.close().await;
        }
        let spawner = self.spawner();
        drop(self);
        if let Spawner::Ssh(session) = spawner {
            if let Ok(s) = Arc::try_unwrap(session) {
                let _ = s.close().await;
            }
        }
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
        // Prove the shell works (and that sudo did not ask for a password). Add the
        // sbin folders to PATH, as sudo's secure_path does: admin tools live there.
        let init = "case \":$PATH:\" in *:/usr/sbin:*) ;; *) PATH=\"$PATH:/usr/local/sbin:/usr/sbin:/sbin\"; export PATH ;; esac";
        match sh.run(init).await {
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
