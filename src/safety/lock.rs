//! One operator per host: a lock on the target (an atomic `mkdir`, with a
//! `holder.json` saying who, run id, pid, since). A second run is refused and
//! told who holds it; `--break-lock` takes over a stale lock, and says so.

use serde_json::json;

use crate::transport::{quote, Cmd, Connection};

/// Who holds a lock.
pub fn holder_json(operator: &str, run_id: &str, command: &str) -> String {
    json!({
        "operator": operator,
        "run_id": run_id,
        "pid": std::process::id(),
        "control_host": std::fs::read_to_string("/etc/hostname").unwrap_or_default().trim(),
        "since": chrono::Utc::now().to_rfc3339(),
        "command": command,
    })
    .to_string()
}

/// Takes the lock at `dir` on the host. `Err` names the holder.
pub async fn acquire(conn: &Connection, dir: &str, holder: &str, break_lock: bool, user: Option<String>) -> Result<Option<String>, String> {
    let d = quote::quote(dir);
    // The holder is written beside and renamed in, so a reader never sees it half-written.
    let take = format!("mkdir -p \"$(dirname {d})\" && mkdir {d} 2>/dev/null && cat > {d}/.holder.tmp && mv {d}/.holder.tmp {d}/holder.json");
    let out = conn.exec(&Cmd::shell(take.clone()).stdin(holder.as_bytes().to_vec()).become_user(user.clone())).await.map_err(|e| e.to_string())?;
    if out.ok() {
        return Ok(None);
    }
    let mut current = String::new();
    for _ in 0..20 {
        current = conn.exec(&Cmd::shell(format!("cat {d}/holder.json 2>/dev/null")).become_user(user.clone())).await.map_err(|e| e.to_string())?.stdout_str();
        if !current.is_empty() {
            break;
        }
        // Taken a moment ago: its holder is being written.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let who = describe(&current);
    if !break_lock {
        return Err(format!("host is locked by another run ({who}); if that run is dead, pass --break-lock (lock: {dir})"));
    }
    let out = conn
        .exec(&Cmd::shell(format!("rm -rf {d} && {take}")).stdin(holder.as_bytes().to_vec()).become_user(user))
        .await
        .map_err(|e| e.to_string())?;
    if !out.ok() {
        return Err(format!("cannot break the lock {dir}: {}", out.stderr_str().trim()));
    }
    Ok(Some(who))
}

/// Releases the lock if this run holds it.
pub async fn release(conn: &Connection, dir: &str, run_id: &str, user: Option<String>) {
    let d = quote::quote(dir);
    let script = format!("grep -q {} {d}/holder.json 2>/dev/null && rm -rf {d}", quote::quote(&format!("\"run_id\":\"{run_id}\"")));
    let _ = conn.exec(&Cmd::shell(script).become_user(user)).await;
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
