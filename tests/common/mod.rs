//! Test helpers: the loopback lab (real sshd, started once per test run by
//! `scripts/lab up`, which is idempotent and locked), and a small builder that
//! runs the real `recover` binary so each test reads as a story.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Once;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn lab_root() -> PathBuf {
    PathBuf::from(std::env::var("RECOVER_LAB").unwrap_or_else(|_| "/tmp/recover-lab".into()))
}

/// Makes sure the lab's sshd fleet runs (no-op when it already does).
pub fn lab() {
    static UP: Once = Once::new();
    UP.call_once(|| {
        let out = Command::new(repo().join("scripts/lab")).arg("up").output().expect("run scripts/lab up");
        assert!(out.status.success(), "lab up failed:\n{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    });
}

/// What a run of `recover` gave back.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Every `--output json` line as JSON.
    pub fn events(&self) -> Vec<serde_json::Value> {
        self.stdout.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
    }
    /// The recap event's per-host counts.
    pub fn recap(&self) -> serde_json::Value {
        self.events().into_iter().find(|e| e["event"] == "recap").map(|e| e["hosts"].clone()).unwrap_or_default()
    }
    pub fn task_events(&self) -> Vec<serde_json::Value> {
        self.events().into_iter().filter(|e| e["event"] == "task").collect()
    }
}

static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// `recover ARGS...` in the repo, with its own state folder.
pub struct Recover {
    args: Vec<String>,
    state: tempfile::TempDir,
    envs: Vec<(String, String)>,
}

impl Recover {
    /// A run with its own state folder and its own lab host locks (so parallel tests do not refuse each other).
    pub fn new() -> Recover {
        let suffix = format!("-{}-{}", std::process::id(), COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst));
        Recover { args: Vec::new(), state: tempfile::tempdir().expect("tempdir"), envs: vec![("RECOVER_LAB_LOCK_SUFFIX".into(), suffix)] }
    }
    pub fn args<I: IntoIterator<Item = S>, S: AsRef<str>>(mut self, args: I) -> Recover {
        self.args.extend(args.into_iter().map(|a| a.as_ref().to_string()));
        self
    }
    pub fn env(mut self, k: &str, v: &str) -> Recover {
        self.envs.retain(|(key, _)| key != k);
        self.envs.push((k.into(), v.into()));
        self
    }
    /// The events of this run's run log (the newest log in its state folder).
    pub fn run_log(&self) -> Vec<serde_json::Value> {
        let dir = self.state.path().join("runs");
        let mut logs: Vec<PathBuf> = std::fs::read_dir(&dir).map(|rd| rd.flatten().map(|e| e.path()).collect()).unwrap_or_default();
        logs.sort();
        let Some(last) = logs.last() else { return Vec::new() };
        std::fs::read_to_string(last).unwrap_or_default().lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
    }
    pub fn state_dir(&self) -> &Path {
        self.state.path()
    }
    /// The command, ready to spawn (for tests that drive it themselves).
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_recover"));
        // The shared folder (freeze, gate) is the state folder too, unless a test sets its own.
        let state = self.envs.iter().find(|(k, _)| k == "RECOVER_STATE_DIR").map(|(_, v)| PathBuf::from(v)).unwrap_or_else(|| self.state.path().to_path_buf());
        cmd.args(&self.args).current_dir(repo()).env("RECOVER_STATE_DIR", self.state.path()).env("RECOVER_SHARED_DIR", &state).env("NO_COLOR", "1");
        for (k, v) in &self.envs {
            cmd.env(k, v);
        }
        cmd
    }
    pub fn run(&self) -> Run {
        let mut cmd = self.command();
        cmd.stdin(Stdio::null());
        let out = cmd.output().expect("run recover");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// sha256 of every file (path, mode, content) under `dir`, sorted: a fingerprint of a tree.
pub fn tree_hash(dir: &Path) -> Vec<(String, u32, String)> {
    use sha2::Digest;
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(meta) = std::fs::symlink_metadata(&p) else { continue };
            if meta.is_dir() {
                stack.push(p.clone());
            }
            let content = if meta.is_file() { std::fs::read(&p).unwrap_or_default() } else { Vec::new() };
            out.push((p.display().to_string(), meta.permissions().mode(), format!("{:x}", sha2::Sha256::digest(&content))));
        }
    }
    out.sort();
    out
}

/// Every entry under `dir`, sorted: its relative path, and its metadata with its sha256 (a
/// file), its link target (`-> T`) or `dir`; or the filesystem's error for it.
fn tree_entries(dir: &Path) -> Vec<(String, Result<(std::fs::Metadata, String), String>)> {
    use sha2::Digest;
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            let entry = match std::fs::symlink_metadata(&p) {
                Err(err) => Err(format!("stat error: {err}")),
                Ok(m) if m.file_type().is_symlink() => Ok((m, format!("-> {}", std::fs::read_link(&p).unwrap().display()))),
                Ok(m) if m.is_dir() => {
                    stack.push(p.clone());
                    Ok((m, "dir".into()))
                }
                Ok(m) => match std::fs::read(&p) {
                    Ok(b) => Ok((m, format!("{:x}", sha2::Sha256::digest(b)))),
                    Err(err) => Err(format!("read error: {err}")),
                },
            };
            out.push((rel, entry));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// (relative path, mode, uid, mtime, sha256 or link target) of everything under `dir`.
pub fn full_tree(dir: &Path) -> Vec<(String, u32, u32, i64, String)> {
    use std::os::unix::fs::MetadataExt;
    tree_entries(dir)
        .into_iter()
        .map(|(rel, e)| {
            let (m, what) = e.unwrap_or_else(|err| panic!("{rel}: {err}"));
            (rel, m.mode(), m.uid(), m.mtime(), what)
        })
        .collect()
}

/// Kills the process in a pid file on drop (a test's own nginx, sshd ...).
pub struct KillOnDrop(pub PathBuf);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(&self.0) {
            let _ = Command::new("kill").arg(pid.trim()).status();
        }
    }
}

/// A scratch folder under a lab host's root, owned by that host's login user.
pub fn host_scratch(host: &str, name: &str) -> PathBuf {
    let dir = lab_root().join(host).join(format!("t-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch");
    let user = if host == "188" { "ollama" } else { "wooo" };
    let st = Command::new("chown").args(["-R", &format!("{user}:"), &dir.display().to_string()]).status().expect("chown");
    assert!(st.success());
    dir
}

/// Gives everything under a lab host's scratch folder to that host's login user (after a test
/// wrote files into it as root).
pub fn give_to_host(dir: &Path) {
    let user = if dir.starts_with(lab_root().join("188")) { "ollama" } else { "wooo" };
    assert!(Command::new("chown").args(["-R", &format!("{user}:"), &dir.display().to_string()]).status().expect("chown").success());
}

/// Writes a file in a temp folder and returns its path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(&p, text).expect("write");
    p
}

/// A TCP port free on `ip` now, chosen by the OS (bind port 0, read it, release it),
/// so that tests running at once never pick the same one.
/// A copy of inventory/lab.yml in `tmp/inv/`, so a test can add host_vars and group_vars beside it.
pub fn lab_inventory_dir(tmp: &Path) -> PathBuf {
    let dir = tmp.join("inv");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(repo().join("inventory/lab.yml"), dir.join("lab.yml")).unwrap();
    dir.join("lab.yml")
}

pub fn free_port(ip: &str) -> u32 {
    let l = std::net::TcpListener::bind((ip, 0)).expect("bind port 0");
    u32::from(l.local_addr().expect("local addr").port())
}

/// An sshd of a test's own for one lab host (same host key, users and config as the lab's, on a
/// port of its own), so a test can kill it by PID without touching the shared lab. `inventory`
/// is a copy of inventory/lab.yml whose host_vars send that host to this sshd. Killed on drop.
pub struct PrivateSshd {
    pub dir: tempfile::TempDir,
    pub host: String,
    pub port: u32,
    pub inventory: PathBuf,
}

impl PrivateSshd {
    pub fn start(host: &str) -> PrivateSshd {
        let dir = tempfile::tempdir().expect("tempdir");
        let lab = lab_root();
        let ip = format!("127.0.0.{host}");
        let port = free_port(&ip);
        let conf = std::fs::read_to_string(lab.join(format!("ssh/sshd_{host}.conf"))).expect("lab sshd config");
        let conf = conf
            .replace(&format!("{ip}:2222"), &format!("{ip}:{port}"))
            .replace(&lab.join(format!("ssh/sshd_{host}.pid")).display().to_string(), &dir.path().join("sshd.pid").display().to_string());
        write(dir.path(), "sshd.conf", &conf);
        let known = std::fs::read_to_string(lab.join("ssh/known_hosts")).unwrap() + &format!("[{ip}]:{port} {}", std::fs::read_to_string(lab.join("ssh/host_ed25519.pub")).unwrap());
        write(dir.path(), "known_hosts", &known);
        let inv_dir = dir.path().join("inv");
        std::fs::create_dir_all(&inv_dir).unwrap();
        std::fs::copy(repo().join("inventory/lab.yml"), inv_dir.join("lab.yml")).unwrap();
        write(
            &inv_dir.join("host_vars"),
            &format!("{host}.yml"),
            &format!("ansible_port: {port}\nansible_ssh_common_args: \"-o UserKnownHostsFile={}\"\n", dir.path().join("known_hosts").display()),
        );
        let s = PrivateSshd { inventory: inv_dir.join("lab.yml"), dir, host: host.to_string(), port };
        s.restart();
        s
    }

    pub fn pidfile(&self) -> PathBuf {
        self.dir.path().join("sshd.pid")
    }

    /// Starts the listener (again): waits until it accepts connections.
    pub fn restart(&self) {
        let _ = std::fs::remove_file(self.pidfile());
        let conf = self.dir.path().join("sshd.conf");
        let log = self.dir.path().join("sshd.log");
        let st = Command::new("/usr/sbin/sshd").args(["-f", conf.to_str().unwrap(), "-E", log.to_str().unwrap()]).status().expect("start sshd");
        assert!(st.success(), "sshd did not start: {}", std::fs::read_to_string(&log).unwrap_or_default());
        for _ in 0..100 {
            if std::net::TcpStream::connect((format!("127.0.0.{}", self.host).as_str(), self.port as u16)).is_ok() && self.pid().is_some() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("sshd on port {} did not come up: {}", self.port, std::fs::read_to_string(&log).unwrap_or_default());
    }

    /// Drops the host off the network: SIGKILLs the listener and every sshd process under it
    /// (the sessions), found by PID from the pidfile down; what the sessions ran is left alone.
    pub fn cut(&self) {
        let Some(root) = self.pid() else { return };
        let mut todo = vec![root.to_string()];
        let mut victims = Vec::new();
        while let Some(pid) = todo.pop() {
            let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
            if exe.file_name().is_some_and(|n| n == "sshd" || n == "sshd-session") {
                victims.push(pid.clone());
            }
            let out = Command::new("ps").args(["-o", "pid=", "--ppid", &pid]).output().expect("ps");
            todo.extend(String::from_utf8_lossy(&out.stdout).split_whitespace().map(String::from));
        }
        if !victims.is_empty() {
            let _ = Command::new("kill").arg("-9").args(&victims).status();
        }
        // kill(2) returns before the processes are gone: wait until they are, so the port
        // refuses the next connection.
        for _ in 0..200 {
            if victims.iter().all(|p| !Path::new(&format!("/proc/{p}")).exists() || std::fs::read_to_string(format!("/proc/{p}/stat")).is_ok_and(|s| s.contains(") Z "))) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("sshd {victims:?} did not die");
    }

    /// The listener's PID once sshd has written it whole (the file exists before its content).
    pub fn pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.pidfile()).ok()?.trim().parse().ok()
    }

    /// Kills the listener only (by its PID).
    pub fn stop(&self) {
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
    }
}

impl Drop for PrivateSshd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Stops a test's own PostgreSQL (by the pid in its postmaster.pid) on drop.
pub struct StopPostgres(pub PathBuf);

impl Drop for StopPostgres {
    fn drop(&mut self) {
        if let Some(pid) = std::fs::read_to_string(self.0.join("postmaster.pid")).ok().and_then(|t| t.lines().next().map(str::to_string)) {
            let _ = Command::new("kill").arg(pid.trim()).status();
        }
    }
}

/// A PostgreSQL cluster of the test's own under `scratch/pg`, with real WAL damage
/// (`scripts/pg-damaged`) on a free port of 188: (its root, its port, the guard that stops it).
pub fn damaged_pg(scratch: &Path) -> (PathBuf, String, StopPostgres) {
    let pg = scratch.join("pg");
    let port = free_port("127.0.0.188").to_string();
    let made = Command::new(repo().join("scripts/pg-damaged")).args([pg.to_str().unwrap(), &port]).output().unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let stop = StopPostgres(pg.join("data"));
    (pg, port, stop)
}

/// A booted systemd container (scripts/nspawn-host), powered off on drop.
pub struct Nspawn(pub String);

impl Nspawn {
    pub fn up(name: &str, addr: &str) -> Nspawn {
        let out = Command::new(repo().join("scripts/nspawn-host")).args(["up", name, addr]).output().unwrap();
        assert!(out.status.success(), "nspawn-host up {name}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        Nspawn(name.to_string())
    }
    pub fn sh(&self, script: &str) -> String {
        let out = Command::new(repo().join("scripts/nspawn-host")).args(["exec", &self.0, "sh", "-c", script]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Nspawn {
    fn drop(&mut self) {
        let _ = Command::new(repo().join("scripts/nspawn-host")).args(["down", &self.0]).status();
    }
}

/// Like [`full_tree`], for a tree the filesystem refuses parts of: an entry that cannot be
/// stat'ed or read is recorded with the filesystem's error instead of its metadata or hash.
pub fn damaged_tree(dir: &Path) -> Vec<(String, String)> {
    use std::os::unix::fs::MetadataExt;
    tree_entries(dir)
        .into_iter()
        .map(|(rel, e)| {
            let shown = match e {
                Ok((m, what)) => format!("{:o} {} {} {what}", m.mode(), m.uid(), m.mtime()),
                Err(err) => err,
            };
            (rel, shown)
        })
        .collect()
}

/// `docker ARGS` against the lab's engine (scripts/lab-docker); stdout, trimmed.
pub fn docker(args: &[&str]) -> String {
    let out = Command::new("/usr/bin/docker").env("DOCKER_HOST", format!("unix://{}/docker/docker.sock", lab_root().display())).args(args).output().expect("docker");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `docker inspect -f FORMAT NAME`, or "" when there is no such container.
pub fn inspect(name: &str, format: &str) -> String {
    docker(&["inspect", "--type", "container", "-f", format, name])
}

/// `scripts/lab-docker ARGS`, which must succeed.
pub fn lab_docker(args: &[&str]) {
    let out = Command::new(repo().join("scripts/lab-docker")).args(args).output().expect("scripts/lab-docker");
    assert!(out.status.success(), "lab-docker {args:?}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

/// Removes a test's containers, their volumes and loop mounts when dropped.
pub struct Containers(pub Vec<String>);

impl Drop for Containers {
    fn drop(&mut self) {
        let mut args = vec!["rm".to_string()];
        args.extend(self.0.iter().cloned());
        let _ = Command::new(repo().join("scripts/lab-docker")).args(&args).output();
    }
}

/// A name for a test's own container: `PREFIX-PID`.
pub fn own_name(prefix: &str) -> String {
    format!("{prefix}-{}", std::process::id())
}

/// The files `scripts/lab-docker clickhouse NAME` damaged (relative to `_data`; the first reads
/// "Bad message", the second "Structure needs cleaning"), and the rows of each part it counted
/// before the damage when chdb made the data (empty without chdb).
pub fn clickhouse_damage(name: &str) -> (Vec<String>, Vec<(String, u64)>) {
    let images = lab_root().join("docker/images");
    let damaged = std::fs::read_to_string(images.join(format!("{name}.damaged"))).expect("the damaged files' list").lines().map(str::to_string).collect();
    let rows = std::fs::read_to_string(images.join(format!("{name}.rows")))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('\t').map(|(p, n)| (p.to_string(), n.trim().parse().unwrap_or(0))))
        .collect();
    (damaged, rows)
}

/// chdb's python (ClickHouse's engine in-process), when it is installed.
pub fn chdb() -> Option<PathBuf> {
    let py = PathBuf::from("/var/cache/recover/chdb-venv/bin/python");
    Command::new(&py).args(["-c", "import chdb"]).output().ok().filter(|o| o.status.success()).map(|_| py)
}
