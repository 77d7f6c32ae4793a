//! One operator per host: a lock on the target (an atomic `mkdir`, with a
//! `holder.json` saying who, run id, pid, since). A second run is refused and
//! told who holds it; `--break-lock` takes over a stale lock, and says so. A lock
//! left by a run of this same control machine whose process is gone (the run was
//! killed, or lost the host before it could release it) is taken over without
//! the flag, and said so too: nobody else can be using it.

use serde_json::json;

use crate::transport::{quote, Cmd, Connection};

/// Who holds a lock.
pub fn holder_json(operator: &str, run_id: &str, command: &str) -> String {
    json!({
        "operator": operator,
        "run_id": run_id,
        "pid": std::process::id(),
        "control_host": control_host(),
        "since": chrono::Utc::now().to_rfc3339(),
        "command": command,
    })
    .to_string()
}

fn control_host() -> String {
    std::fs::read_to_string("/etc/hostname").unwrap_or_default().trim().to_string()
}

/// The holder is a run of this control machine whose process no longer exists.
fn holder_is_gone(holder: &str) -> bool {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(holder) else { return false };
    let same_machine = v["control_host"].as_str() == Some(control_host().as_str()) && !control_host().is_empty();
    match v["pid"].as_u64() {
        Some(pid) if same_machine && pid != u64::from(std::process::id()) => !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        _ => false,
    }
}

/// Why a lock was not taken.
pub enum LockError {
    /// Another run holds it (the message names it), it cannot be broken, or the lock's user
    /// cannot be become.
    Held(String),
    /// The host went away while taking it.
    Lost(String),
    /// This run holds it already, through another inventory host that reaches the same
    /// machine (`localhost` delegated to, two names of one host): the host shares it.
    SameRun,
}

impl From<crate::transport::TransportError> for LockError {
    fn from(e: crate::transport::TransportError) -> LockError {
        if e.is_lost() { LockError::Lost(e.to_string()) } else { LockError::Held(e.to_string()) }
    }
}

/// Where, beside the lock at `dir`, the run's tracked remote command is recorded while it runs.
pub fn runfile(dir: &str) -> String {
    format!("{}/running", dir.trim_end_matches('/'))
}

/// The run file of an inventory host that shares the lock its run took through another name of
/// the same machine: its own, beside the first (`running.<host>`), so each session's action is
/// recorded and killable; a later run checks every one of them.
pub fn shared_runfile(dir: &str, host: &str) -> String {
    let safe: String = host.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' }).collect();
    format!("{}.{safe}", runfile(dir))
}

/// What the host's freeze record said, read in the same round trip as the lock.
#[derive(Debug, Clone)]
pub enum HostFreeze {
    /// No record there.
    None,
    Frozen(crate::safety::freeze::Freeze),
    /// A record that exists but cannot be read or parsed: a freeze (fail closed).
    Unreadable(String),
}

/// Marks the freeze record's part of the lock command's output.
const FREEZE_MARK: &str = "@@recover-freeze@@";

/// The shell that prints the freeze record at `file` after the marker (base64), or says it
/// cannot be read.
fn freeze_read(file: &str) -> String {
    let f = quote::quote(file);
    format!("if [ -e {f} ] || [ -L {f} ]; then printf '\\n{FREEZE_MARK}'; base64 -w0 < {f} 2>/dev/null || printf '!unreadable'; fi")
}

fn parse_freeze(stdout: &str, file: &str) -> HostFreeze {
    use base64::Engine as _;
    let Some((_, rest)) = stdout.split_once(FREEZE_MARK) else { return HostFreeze::None };
    let rest = rest.trim();
    if rest.ends_with("!unreadable") {
        return HostFreeze::Unreadable(format!("the host's freeze record {file} exists but cannot be read: treated as a freeze"));
    }
    match base64::engine::general_purpose::STANDARD.decode(rest).ok().and_then(|b| String::from_utf8(b).ok()) {
        Some(text) => match crate::safety::freeze::parse_freeze(&text) {
            Ok(f) => HostFreeze::Frozen(f),
            Err(e) => HostFreeze::Unreadable(format!("the host's freeze record {file} cannot be parsed ({e}): treated as a freeze")),
        },
        None => HostFreeze::Unreadable(format!("the host's freeze record {file} cannot be read: treated as a freeze")),
    }
}

/// Reads the host's freeze record on its own (when the lock was not taken in one go).
pub async fn read_freeze(conn: &Connection, file: &str, user: Option<String>) -> Result<HostFreeze, crate::transport::TransportError> {
    let out = conn.exec(&Cmd::shell(freeze_read(file)).become_user(user).label("read the fleet's freeze record")).await?;
    Ok(parse_freeze(&out.stdout_str(), file))
}

/// Takes the lock at `dir` on the host. `Ok(Some((holder, why)))` when a previous
/// holder's lock was taken over; `Err` names the holder. With `freeze_file`, the host's
/// freeze record is read in the same round trip (into `freeze`).
pub async fn acquire(conn: &Connection, dir: &str, holder: &str, break_lock: bool, user: Option<String>, freeze_file: Option<&str>, freeze: &mut HostFreeze) -> Result<Option<(String, String)>, LockError> {
    let d = quote::quote(dir);
    // `mkdir` is the atomic test-and-set; the holder is one `printf` (the shell's own) into it.
    let parent = std::path::Path::new(dir).parent().map(|p| p.display().to_string()).filter(|p| !p.is_empty());
    let make_parent = parent.map(|p| format!("{{ [ -d {p} ] || mkdir -p -- {p}; }} && ", p = quote::quote(&p))).unwrap_or_default();
    let take = format!("{make_parent}mkdir -- {d} && printf '%s' {} > {d}/holder.json", quote::quote(holder));
    let first = match freeze_file {
        Some(f) => format!("{{ {take}; }}; r=$?; {}; exit $r", freeze_read(f)),
        None => take.clone(),
    };
    let out = conn.exec(&Cmd::shell(first).become_user(user.clone()).label(format!("take the lock {dir}"))).await?;
    if let Some(f) = freeze_file {
        *freeze = parse_freeze(&out.stdout_str(), f);
    }
    if out.ok() {
        return Ok(None);
    }
    // Not held by anyone: the folder could not be made at all (a bad recover_lock_dir).
    if !conn.exec(&Cmd::argv(["test", "-d", dir]).become_user(user.clone())).await?.ok() {
        let err = out.stderr_str();
        return Err(LockError::Held(format!("cannot create the lock folder {dir} (recover_lock_dir): {}", if err.trim().is_empty() { "mkdir failed".into() } else { err.trim().to_string() })));
    }
    let mut current = String::new();
    for _ in 0..20 {
        current = conn.exec(&Cmd::shell(format!("cat {d}/holder.json 2>/dev/null")).become_user(user.clone())).await?.stdout_str();
        if serde_json::from_str::<serde_json::Value>(&current).is_ok() {
            break;
        }
        // Taken a moment ago: its holder is being written.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let who = describe(&current);
    let run_of = |h: &str| serde_json::from_str::<serde_json::Value>(h).ok().and_then(|v| v["run_id"].as_str().map(str::to_string));
    let holder_run = run_of(&current);
    if holder_run.is_some() && holder_run == run_of(holder) {
        return Err(LockError::SameRun);
    }
    // The dead run may have left an action running on the host (recover was killed): its
    // process group is in the run file. The lock is kept until that process is gone.
    let running = conn
        .exec(&Cmd::shell(crate::transport::runfile_live_script(&runfile(dir))).become_user(user.clone()))
        .await?
        .stdout_str();
    if let Some((pid, what)) = running.trim().split_once(' ') {
        return Err(LockError::Held(format!(
            "host may still be running: {what} (remote process group {pid}, started by the run that holds the lock: {who}); the lock is kept until it ends (kill it there with `kill -TERM -{pid}`, then run again)"
        )));
    }
    let why = if holder_is_gone(&current) {
        "its run is no longer running on this machine".to_string()
    } else if break_lock {
        "--break-lock".to_string()
    } else {
        return Err(LockError::Held(format!("host is locked by another run ({who}); if that run is dead, pass --break-lock (lock: {dir})")));
    };
    let out = conn.exec(&Cmd::shell(format!("rm -rf {d} && {take}")).become_user(user).label(format!("break the lock {dir} and take it"))).await?;
    if !out.ok() {
        return Err(LockError::Held(format!("cannot break the lock {dir}: {}", out.stderr_str().trim())));
    }
    Ok(Some((who, why)))
}

/// Releases the lock if this run holds it. `Err` when the host could not be asked (it went
/// away): the lock stays behind.
pub async fn release(conn: &Connection, dir: &str, run_id: &str, user: Option<String>) -> Result<(), crate::transport::TransportError> {
    let d = quote::quote(dir);
    let ours = quote::quote(&format!("\"run_id\":\"{run_id}\""));
    let script = format!("{{ IFS= read -r h < {d}/holder.json; }} 2>/dev/null; case \"$h\" in *{ours}*) exec rm -rf -- {d} ;; esac");
    conn.exec(&Cmd::shell(script).become_user(user).label(format!("release the lock {dir}"))).await.map(|_| ())
}

/// "root, run ab12, pid 123, since ..." from a holder.json.
pub fn describe(holder: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(holder) {
        Ok(v) => format!(
            "{} on {}, run {}, pid {}, since {}",
            v["operator"].as_str().unwrap_or("?"),
            v["control_host"].as_str().unwrap_or("?"),
            v["run_id"].as_str().unwrap_or("?"),
            v["pid"],
            v["since"].as_str().unwrap_or("?")
        ),
        Err(_) => "an unknown holder".into(),
    }
}
