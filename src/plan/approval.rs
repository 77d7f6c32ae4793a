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

use super::*;

/// An approval's life unless `--expires` says otherwise.
pub const DEFAULT_EXPIRY_SECS: i64 = 3600;

/// The longest an approval may hold (recover.yml `approval_max_age`).
pub const MAX_EXPIRY_SECS: i64 = 24 * 3600;

/// One approval of one plan: who (a name), as which identity the machine can tell apart
/// (`uid:N`, the approver's OS user, or `key:NAME`, an approver key registered in
/// recover.yml, with its signature over the plan's digest), until when.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    pub approver: String,
    pub identity: String,
    /// `ssh-keygen -Y sign` of [`Approval::message`] (armoured), with a registered key.
    pub signature: Option<String>,
    pub time: String,
    pub time_unix: i64,
    pub expires_unix: i64,
    pub plan_digest: String,
    pub digest: String,
}

/// The namespace of approval signatures (`ssh-keygen -Y sign -n`).
pub const SIGNATURE_NAMESPACE: &str = "recover-plan-approval";

impl Approval {
    pub fn new(plan_digest: &str, approver: &str, identity: &str, now: chrono::DateTime<chrono::Utc>, ttl_secs: i64) -> Approval {
        let mut a = Approval {
            approver: approver.to_string(),
            identity: identity.to_string(),
            signature: None,
            time: now.to_rfc3339(),
            time_unix: now.timestamp(),
            expires_unix: now.timestamp() + ttl_secs,
            plan_digest: plan_digest.to_string(),
            digest: String::new(),
        };
        a.digest = a.computed_digest();
        a
    }
    /// What a key signs: the plan's digest, who, as which identity, when, until when.
    pub fn message(&self) -> String {
        format!("recover-approval\n{}\n{}\n{}\n{}\n{}\n{}\n", self.plan_digest, self.approver, self.identity, self.time, self.time_unix, self.expires_unix)
    }
    pub fn computed_digest(&self) -> String {
        sha256_hex(format!("{}{}", self.message(), self.signature.as_deref().unwrap_or("")).as_bytes())
    }
    /// Sets the signature and the digest that covers it.
    pub fn signed(mut self, signature: String) -> Approval {
        self.signature = Some(signature);
        self.digest = self.computed_digest();
        self
    }
    pub fn expires(&self) -> String {
        chrono::DateTime::from_timestamp(self.expires_unix, 0).map(|t| t.to_rfc3339()).unwrap_or_default()
    }
}

/// A plan's approvals that count now, and why the others do not.
pub struct ApprovalCheck {
    pub valid: Vec<Approval>,
    pub problems: Vec<String>,
    pub needed: usize,
}

impl ApprovalCheck {
    /// The people behind the valid approvals: two approvals are one person when they share a
    /// name (case-folded) or an identity (an OS user, a key); each person once, by their names.
    pub fn distinct(&self) -> Vec<String> {
        let mut people: Vec<(std::collections::BTreeSet<String>, std::collections::BTreeSet<String>)> = Vec::new();
        for a in &self.valid {
            let name = a.approver.to_lowercase();
            let mut group = (std::collections::BTreeSet::from([name]), std::collections::BTreeSet::from([a.identity.clone()]));
            // Merge every person this approval ties to.
            people.retain(|(n, i)| {
                if n.intersection(&group.0).next().is_some() || i.intersection(&group.1).next().is_some() {
                    group.0.extend(n.iter().cloned());
                    group.1.extend(i.iter().cloned());
                    false
                } else {
                    true
                }
            });
            people.push(group);
        }
        let mut v: Vec<String> = people.into_iter().map(|(n, _)| n.into_iter().collect::<Vec<_>>().join("/")).collect();
        v.sort();
        v
    }
    pub fn enough(&self) -> bool {
        self.distinct().len() >= self.needed
    }
}

/// The approvals of `pf` that hold at `now`: not expired, not dated ahead, recorded in the
/// audit trail (`audited`: approval digests of the run logs and of the shared folder), with a
/// safe name, and, where approver keys are registered, signed by that approver's key
/// (`verify` checks one); how many distinct approvers it needs.
pub fn check_approvals(pf: &PlanFile, now: i64, two_person: bool, audited: &std::collections::HashSet<String>, verify: &dyn Fn(&Approval) -> Result<(), String>) -> ApprovalCheck {
    let needed = if two_person && pf.plan.highest_tier() == Some(crate::safety::Tier::Block) { 2 } else { 1 };
    let mut valid = Vec::new();
    let mut problems = Vec::new();
    for a in &pf.approvals {
        let who = crate::report::clean_line(&a.approver).into_owned();
        if approver_name(&a.approver).ok().as_deref() != Some(a.approver.as_str()) {
            problems.push(format!("the approval by {who:?} has a name recover does not accept"));
        } else if a.expires_unix <= now {
            problems.push(format!("the approval by {who} expired at {}", a.expires()));
        } else if a.time_unix > now + 300 {
            problems.push(format!("the approval by {who} is dated in the future ({})", a.time));
        } else if !audited.contains(&a.digest) {
            problems.push(format!("the approval by {who} is not in the audit trail (`recover approve` records every approval there)"));
        } else if let Err(e) = verify(a) {
            problems.push(format!("the approval by {who}: {e}"));
        } else {
            valid.push(a.clone());
        }
    }
    ApprovalCheck { valid, problems, needed }
}

/// The approval digests recorded in the run logs of this machine and in the shared folder
/// (where an approver who is another OS user records theirs).
pub fn audited_approvals() -> std::collections::HashSet<String> {
    let mut set = std::collections::HashSet::new();
    for log in crate::report::run_logs() {
        for e in crate::report::read_events(&log) {
            if e["event"] == "plan_approval" {
                if let Some(d) = e["approval_digest"].as_str() {
                    set.insert(d.to_string());
                }
            }
        }
    }
    if let Ok(rd) = std::fs::read_dir(crate::safety::freeze::shared_dir().join("approvals")) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(d) = name.strip_suffix(".json") {
                // The record must say what its name says (a renamed file is not a record).
                let text = std::fs::read_to_string(e.path()).unwrap_or_default();
                if serde_json::from_str::<serde_json::Value>(&text).ok().and_then(|v| v["approval_digest"].as_str().map(str::to_string)).as_deref() == Some(d) {
                    set.insert(d.to_string());
                }
            }
        }
    }
    set
}

/// `plan_two_person: true` in recover.yml (or `RECOVER_PLAN_TWO_PERSON=1`, which can require
/// it but never lift it): BLOCK steps need two different approvers.
pub fn two_person_rule() -> bool {
    let on = |v: &str| matches!(v.trim().to_lowercase().as_str(), "true" | "yes" | "on" | "1");
    crate::safety::freeze::config_value("plan_two_person").is_some_and(|v| on(&v)) || std::env::var("RECOVER_PLAN_TWO_PERSON").is_ok_and(|v| on(&v))
}

/// Parses `30m`, `2h`, `90s`, `1d` or seconds (above 0).
pub fn parse_duration(v: &str) -> Result<i64, String> {
    match crate::safety::freeze::parse_secs(v) {
        Some(n) if n > 0 => Ok(n),
        _ => Err(format!("{:?} is not a duration (like 30m, 1h, 90s)", v.trim())),
    }
}

/// The approver keys of recover.yml (`approvers:` name -> public key line), if any.
pub fn registered_keys() -> Result<Vec<(String, String)>, String> {
    let Some(dir) = crate::assets::project_dir() else { return Ok(Vec::new()) };
    let cfg = dir.join("recover.yml");
    let node = crate::yaml::load_file(&cfg).map_err(|e| e.to_string())?;
    let Some(m) = node.get("approvers") else { return Ok(Vec::new()) };
    let Some(entries) = m.as_map() else { return Err(format!("{}: `approvers` must map approver names to SSH public keys", cfg.display())) };
    let mut out = Vec::new();
    for (k, v) in entries {
        let name = approver_name(&k.scalar_string().unwrap_or_default()).map_err(|e| format!("{}: approvers: {e}", cfg.display()))?;
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
    crate::safety::freeze::config_value("approval_max_age").and_then(|v| crate::safety::freeze::parse_secs(&v)).filter(|n| *n > 0).unwrap_or(MAX_EXPIRY_SECS)
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
        // A board approval: by an approver `recover serve add-approver` registered.
        if let Some(name) = a.identity.strip_prefix("board:") {
            return if name == a.approver && super::board_approvers::registered(name) { Ok(()) } else { Err(format!("{} is not a registered board approver", a.approver)) };
        }
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

/// Puts approval `ap` of the plan in `file` where `apply` looks: the audit chain first (a run
/// log of its own, and the shared folder other operators read), then the plan file.
pub fn attach(file: &Path, pf: &mut PlanFile, ap: &Approval) -> Result<(), String> {
    let file = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
    let mut log = crate::report::RunLog::create(&run_id).map_err(|e| format!("cannot write the audit trail under {}: {e}", crate::report::state_dir().display()))?;
    log.write(&crate::report::Event::PlanApproval { file: file.display().to_string(), plan_digest: pf.digest.clone(), approver: ap.approver.clone(), expires: ap.expires(), approval_digest: ap.digest.clone() });
    drop(log);
    record_approval(ap, &file.display().to_string())?;
    pf.approvals.push(ap.clone());
    pf.write(&file)
}

/// Records a saved plan in the shared folder (`plans-saved/DIGEST.json`): the plans the board
/// lists. The same plan saved again is recorded once.
pub fn record_saved(plan_digest: &str, file: &str) -> Result<(), String> {
    let dir = crate::safety::freeze::shared_subdir("plans-saved").map_err(|e| format!("cannot record the plan in the shared folder {}: {e}", crate::safety::freeze::shared_dir().display()))?;
    let text = serde_json::json!({"plan_digest": plan_digest, "file": file, "saved": chrono::Utc::now().to_rfc3339()});
    match crate::safety::freeze::create_record(&dir, &format!("{plan_digest}.json"), &format!("{text}\n")) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(format!("cannot record the plan in {}: {e}", dir.display())),
        _ => Ok(()),
    }
}

/// The saved plans the shared folder records: digest and file, newest first.
pub fn saved_plans() -> Vec<(String, String)> {
    let dir = crate::safety::freeze::shared_dir().join("plans-saved");
    let mut v: Vec<(String, String, String)> = std::fs::read_dir(&dir)
        .map(|rd| rd.flatten().filter_map(|e| std::fs::read_to_string(e.path()).ok()).filter_map(|t| serde_json::from_str::<serde_json::Value>(&t).ok()).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|j| Some((j["saved"].as_str()?.to_string(), j["plan_digest"].as_str()?.to_string(), j["file"].as_str()?.to_string())))
        .collect();
    v.sort();
    v.into_iter().rev().map(|(_, d, f)| (d, f)).collect()
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
