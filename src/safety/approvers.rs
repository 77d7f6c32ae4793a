//! Who approved a saved plan, as the machine can tell people apart (DESIGN invariant 15).
//!
//! An approval names a person (a safe, case-folded name) and an identity: by default the OS
//! user that ran `recover approve` (`uid:N`), so that one OS user approving twice under two
//! names counts once. Where `recover.yml` registers approver keys
//!
//! ```yaml
//! approvers:
//!   alice: "ssh-ed25519 AAAAC3... alice@laptop"
//!   bob: "ssh-ed25519 AAAAC3... bob@phone"
//! ```
//!
//! an approval is an SSH signature (`ssh-keygen -Y sign`) by that person's own key over the
//! plan's digest, checked at apply against the registered key; the identity is the key.
//!
//! Every approval is also recorded in the shared folder (`approvals/`), and every applied plan
//! (`plans-applied/`), each created exclusively: the audit trail another operator reads, and
//! the record that makes a plan apply once.

use std::path::{Path, PathBuf};

use crate::plan::{Approval, SIGNATURE_NAMESPACE};

/// The approver keys of recover.yml (`approvers:` name -> public key line), if any.
pub fn registered_keys() -> Result<Vec<(String, String)>, String> {
    let Some(dir) = crate::assets::project_dir() else { return Ok(Vec::new()) };
    let cfg = dir.join("recover.yml");
    let node = crate::yaml::load_file(&cfg).map_err(|e| e.to_string())?;
    let Some(m) = node.get("approvers") else { return Ok(Vec::new()) };
    let Some(entries) = m.as_map() else { return Err(format!("{}: `approvers` must map approver names to SSH public keys", cfg.display())) };
    let mut out = Vec::new();
    for (k, v) in entries {
        let name = crate::plan::approver_name(&k.scalar_string().unwrap_or_default()).map_err(|e| format!("{}: approvers: {e}", cfg.display()))?;
        let key = v.scalar_string().unwrap_or_default();
        if key.split_whitespace().count() < 2 {
            return Err(format!("{}: approvers: {name}: not an SSH public key line (\"ssh-ed25519 AAAA...\")", cfg.display()));
        }
        out.push((name, key.trim().to_string()));
    }
    Ok(out)
}

/// The identity of this process's OS user.
pub fn os_identity() -> String {
    format!("uid:{}", unsafe { libc::geteuid() })
}

/// The longest approval recover.yml allows (`approval_max_age`), else 24 hours.
pub fn max_expiry() -> i64 {
    crate::safety::freeze::config_value("approval_max_age").and_then(|v| crate::safety::freeze::parse_secs(&v)).filter(|n| *n > 0).unwrap_or(crate::plan::MAX_EXPIRY_SECS)
}

fn tempdir() -> Result<PathBuf, String> {
    let base = std::env::temp_dir().join(format!("recover-sig-{}-{}", std::process::id(), uuid::Uuid::new_v4().simple()));
    std::fs::create_dir(&base).map_err(|e| format!("cannot make {}: {e}", base.display()))?;
    Ok(base)
}

/// Signs `a` with the private key at `key` (`ssh-keygen -Y sign`): the approval, signed.
pub fn sign(a: Approval, key: &Path) -> Result<Approval, String> {
    let dir = tempdir()?;
    let res = (|| {
        let msg = dir.join("approval");
        std::fs::write(&msg, a.message()).map_err(|e| e.to_string())?;
        let out = std::process::Command::new("ssh-keygen")
            .args(["-q", "-Y", "sign", "-n", SIGNATURE_NAMESPACE, "-f"])
            .arg(key)
            .arg(&msg)
            .stdin(std::process::Stdio::inherit())
            .output()
            .map_err(|e| format!("cannot run ssh-keygen: {e}"))?;
        if !out.status.success() {
            return Err(format!("ssh-keygen -Y sign with {} failed: {}", key.display(), String::from_utf8_lossy(&out.stderr).trim()));
        }
        std::fs::read_to_string(dir.join("approval.sig")).map_err(|e| e.to_string())
    })();
    let _ = std::fs::remove_dir_all(&dir);
    Ok(a.signed(res?))
}

/// Checks one approval against the registered keys: with none registered, its identity must
/// be an OS user's; with keys, it must be signed by its approver's registered key.
pub fn verify(a: &Approval, keys: &[(String, String)]) -> Result<(), String> {
    if keys.is_empty() {
        return if a.identity.starts_with("uid:") { Ok(()) } else { Err(format!("its identity {} is a key, and recover.yml registers no approver keys", a.identity)) };
    }
    let Some((name, key)) = keys.iter().find(|(n, _)| *n == a.approver) else {
        return Err(format!("{} is not an approver registered in recover.yml", a.approver));
    };
    if a.identity != format!("key:{name}") {
        return Err("it is not signed with a registered approver key".into());
    }
    let Some(sig) = &a.signature else { return Err("it carries no signature".into()) };
    let dir = tempdir()?;
    let res = (|| {
        std::fs::write(dir.join("allowed"), format!("{name} {key}\n")).map_err(|e| e.to_string())?;
        std::fs::write(dir.join("sig"), sig).map_err(|e| e.to_string())?;
        let mut child = std::process::Command::new("ssh-keygen")
            .args(["-Y", "verify", "-n", SIGNATURE_NAMESPACE, "-I", name, "-f"])
            .arg(dir.join("allowed"))
            .arg("-s")
            .arg(dir.join("sig"))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run ssh-keygen: {e}"))?;
        if let Some(mut i) = child.stdin.take() {
            std::io::Write::write_all(&mut i, a.message().as_bytes()).map_err(|e| e.to_string())?;
        }
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!("its signature does not verify with {name}'s registered key"))
        }
    })();
    let _ = std::fs::remove_dir_all(&dir);
    res
}

/// Records an approval in the shared folder (`approvals/DIGEST.json`, created exclusively).
pub fn record_approval(a: &Approval, file: &str) -> Result<PathBuf, String> {
    let dir = crate::safety::freeze::shared_subdir("approvals").map_err(|e| format!("cannot record the approval in the shared folder {}: {e}", crate::safety::freeze::shared_dir().display()))?;
    let text = serde_json::json!({
        "approval_digest": a.digest, "plan_digest": a.plan_digest, "approver": a.approver, "identity": a.identity,
        "time": a.time, "expires": a.expires(), "file": file,
    });
    crate::safety::freeze::create_record(&dir, &format!("{}.json", a.digest), &format!("{text}\n")).map_err(|e| format!("cannot record the approval in {}: {e}", dir.display()))
}

/// The record of the run that applied the plan with this digest, if one did: from the shared
/// folder, else from this machine's run logs.
pub fn applied(plan_digest: &str) -> Option<String> {
    let p = crate::safety::freeze::shared_dir().join("plans-applied").join(format!("{plan_digest}.json"));
    if let Ok(text) = std::fs::read_to_string(&p) {
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        return Some(describe(&v, &p.display().to_string()));
    }
    for log in crate::report::run_logs() {
        let events = crate::report::read_events(&log);
        if events.iter().any(|e| e["event"] == "plan_apply" && e["plan_digest"] == plan_digest) {
            let start = events.iter().find(|e| e["event"] == "run_start").cloned().unwrap_or_default();
            return Some(describe(&start, &log.display().to_string()));
        }
    }
    None
}

fn describe(v: &serde_json::Value, place: &str) -> String {
    format!(
        "run {} by {} at {} ({place})",
        v["run_id"].as_str().unwrap_or("?"),
        crate::report::clean_line(v["operator"].as_str().unwrap_or("?")),
        v["at"].as_str().unwrap_or("?")
    )
}

/// Marks the plan applied by this run (`plans-applied/DIGEST.json`, created exclusively):
/// `Err` names the run that applied it first, or why it cannot be recorded.
pub fn mark_applied(plan_digest: &str, run_id: &str, operator: &str, file: &str) -> Result<(), String> {
    let dir = crate::safety::freeze::shared_subdir("plans-applied").map_err(|e| format!("cannot record that the plan is applied in the shared folder {}: {e}", crate::safety::freeze::shared_dir().display()))?;
    let text = serde_json::json!({"plan_digest": plan_digest, "run_id": run_id, "operator": operator, "at": chrono::Utc::now().to_rfc3339(), "file": file});
    match crate::safety::freeze::create_record(&dir, &format!("{plan_digest}.json"), &format!("{text}\n")) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(format!("the plan was applied already: {}", applied(plan_digest).unwrap_or_else(|| "by another run".into()))),
        Err(e) => Err(format!("cannot record that the plan is applied in {}: {e}", dir.display())),
    }
}
