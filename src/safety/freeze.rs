//! The SOP's automation freeze (section 2) and the automation gate's last
//! result (section 12.2). Both live in the *shared* folder, where every operator
//! and every `--automation` caller of the fleet sees them, whoever they are and
//! whatever their HOME: `$RECOVER_SHARED_DIR`, else `shared_state:` in
//! `recover.yml`, else `/var/lib/recover`. `--automation` runs refuse while
//! frozen, and unless the gate was found green recently for the same baseline
//! and inventory.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Who froze automation, why, since when.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Freeze {
    pub reason: String,
    pub by: String,
    pub since: String,
}

/// The automation gate's last evaluation (written by `recover gate`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GateState {
    pub green: bool,
    pub at: String,
    #[serde(default)]
    pub unmet: Vec<String>,
    /// sha256 of the baseline files and of the inventory files it was evaluated with.
    #[serde(default)]
    pub baseline_sha256: Option<String>,
    #[serde(default)]
    pub inventory_sha256: Option<String>,
    #[serde(default)]
    pub baseline: Option<String>,
}

/// What a recorded gate must match to count: the run's baseline and inventory.
#[derive(Clone, Debug)]
pub struct GateKey {
    pub baseline_sha256: String,
    pub inventory_sha256: String,
}

/// How old a green gate may be and still count, by default (the SOP's 15-minute window).
pub const GATE_MAX_AGE_SECS: i64 = 15 * 60;

/// The shared folder of the freeze and the gate (see the module doc).
pub fn shared_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("RECOVER_SHARED_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    if let (Some(d), Some(root)) = (config_value("shared_state"), crate::assets::project_dir()) {
        return root.join(d);
    }
    PathBuf::from("/var/lib/recover")
}

/// A scalar of `recover.yml` in the project folder, if set.
pub fn config_value(key: &str) -> Option<String> {
    let cfg = crate::assets::project_dir()?.join("recover.yml");
    // Read once per file: a run asks for several keys, and for some once per host.
    type Cache = std::sync::Mutex<Vec<(std::path::PathBuf, Option<crate::yaml::Node>)>>;
    static CACHE: std::sync::OnceLock<Cache> = std::sync::OnceLock::new();
    let mut cache = CACHE.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    if !cache.iter().any(|(p, _)| *p == cfg) {
        let node = crate::yaml::load_file(&cfg).ok();
        cache.push((cfg.clone(), node));
    }
    let node = cache.iter().find(|(p, _)| *p == cfg)?.1.as_ref()?;
    node.get(key).and_then(|v| v.scalar_string())
}

/// How old a green gate may be: `gate_max_age:` in recover.yml (seconds, or `15m`, `1h`), else 15 minutes.
pub fn gate_max_age() -> i64 {
    config_value("gate_max_age").and_then(|v| parse_secs(&v)).unwrap_or(GATE_MAX_AGE_SECS)
}

/// Seconds from `90`, `90s`, `30m`, `2h` or `1d`; `None` when it is not one of those.
pub fn parse_secs(v: &str) -> Option<i64> {
    let v = v.trim();
    let (num, mult) = match v.chars().last() {
        Some('s') => (&v[..v.len() - 1], 1),
        Some('m') => (&v[..v.len() - 1], 60),
        Some('h') => (&v[..v.len() - 1], 3600),
        Some('d') => (&v[..v.len() - 1], 86400),
        _ => (v, 1),
    };
    num.trim().parse::<i64>().ok().map(|n| n * mult)
}

/// sha256 over the contents of `paths` (folders: every file below, in name order).
pub fn files_digest(paths: &[PathBuf]) -> String {
    let mut files = Vec::new();
    let mut stack: Vec<PathBuf> = paths.to_vec();
    while let Some(p) = stack.pop() {
        if p.is_dir() {
            if let Ok(rd) = std::fs::read_dir(&p) {
                stack.extend(rd.flatten().map(|e| e.path()));
            }
        } else {
            files.push(p);
        }
    }
    files.sort();
    let mut h = Sha256::new();
    for f in files {
        h.update(std::fs::read(&f).unwrap_or_default());
        h.update([0]);
    }
    format!("{:x}", h.finalize())
}

fn freeze_path() -> PathBuf {
    shared_dir().join("freeze.json")
}

fn gate_path() -> PathBuf {
    shared_dir().join("gate.json")
}

/// The freeze in force, if any. A freeze record that exists but cannot be read or parsed is
/// a freeze (fail closed): `Err` says why it could not be read.
pub fn state() -> Result<Option<Freeze>, String> {
    let path = freeze_path();
    match std::fs::read_to_string(&path) {
        Ok(text) => parse_freeze(&text).map(Some).map_err(|e| format!("the freeze record {} cannot be parsed ({e}): treated as a freeze", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !path.is_symlink() => Ok(None),
        Err(e) => Err(format!("the freeze record {} exists but cannot be read ({e}): treated as a freeze", path.display())),
    }
}

/// A freeze record's text (a host's or the shared folder's).
pub fn parse_freeze(text: &str) -> Result<Freeze, String> {
    serde_json::from_str::<Freeze>(text).map_err(|e| e.to_string())
}

/// The freeze in force as a record: an unreadable one is a freeze by "unknown".
pub fn current() -> Option<Freeze> {
    match state() {
        Ok(f) => f,
        Err(why) => Some(Freeze { reason: why, by: "unknown".into(), since: "unknown".into() }),
    }
}

/// Creates the shared folder: readable by every operator, writable by its owner and group
/// (whatever the umask).
fn make_shared() -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let dir = shared_dir();
    if !dir.is_dir() {
        std::fs::DirBuilder::new().recursive(true).mode(0o775).create(&dir)?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o775))?;
    }
    Ok(())
}

/// Writes a shared record whole (a temporary file renamed over it), mode 0644 whatever the
/// umask: every operator reads it.
fn write_shared(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    make_shared()?;
    let tmp = path.with_extension(format!("json.tmp-{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o644).open(&tmp)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o644))?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// Why the shared folder cannot be trusted to hold a freeze (`None`: it can). It must not be
/// world-writable (anyone could lift a freeze), and it must be root's, this user's, or a
/// group's this user is in.
pub fn shared_dir_problem() -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let dir = shared_dir();
    let meta = match std::fs::metadata(&dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => return Some(format!("the shared folder {} cannot be read ({e})", dir.display())),
    };
    if meta.mode() & 0o002 != 0 {
        return Some(format!("the shared folder {} is world-writable (mode {:o}): any local user could lift a freeze; run `chmod o-w {}`", dir.display(), meta.mode() & 0o7777, dir.display()));
    }
    let me = unsafe { libc::geteuid() };
    if meta.uid() != 0 && meta.uid() != me && !in_group(meta.gid()) {
        return Some(format!("the shared folder {} belongs to uid {} and to a group this user is not in: it is not a folder the operators share", dir.display(), meta.uid()));
    }
    None
}

/// Is this process in group `gid` (its own or a supplementary one)?
fn in_group(gid: u32) -> bool {
    if unsafe { libc::getegid() } == gid {
        return true;
    }
    let n = unsafe { libc::getgroups(0, std::ptr::null_mut()) };
    if n <= 0 {
        return false;
    }
    let mut groups = vec![0 as libc::gid_t; n as usize];
    let n = unsafe { libc::getgroups(n, groups.as_mut_ptr()) };
    n > 0 && groups[..n as usize].contains(&gid)
}

pub fn freeze(reason: &str, by: &str) -> std::io::Result<Freeze> {
    let f = Freeze { reason: reason.to_string(), by: by.to_string(), since: chrono::Utc::now().to_rfc3339() };
    write_shared(&freeze_path(), &serde_json::to_string_pretty(&f).unwrap_or_default())?;
    Ok(f)
}

/// What the hosts said of the fleet's freeze when runs last read it (`recover status` shows
/// it): host -> its freeze, or none. A cache for people to read: each `--automation` run reads
/// every host's own record again, with its lock.
pub fn cache(host: &str, f: Option<&Freeze>) {
    let path = shared_dir().join("freeze-on-hosts.json");
    let mut m: serde_json::Map<String, serde_json::Value> = std::fs::read_to_string(&path).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default();
    let was = m.get(host).cloned();
    match f {
        Some(f) => {
            m.insert(host.to_string(), serde_json::json!({"freeze": f, "read_at": chrono::Utc::now().to_rfc3339()}));
        }
        None => {
            m.remove(host);
        }
    }
    if m.get(host) != was.as_ref() {
        let _ = write_shared(&path, &serde_json::to_string_pretty(&m).unwrap_or_default());
    }
}

/// The cache [`cache`] keeps: host -> (freeze, when it was read).
pub fn cached_host_freezes() -> Vec<(String, Freeze, String)> {
    let path = shared_dir().join("freeze-on-hosts.json");
    let m: serde_json::Map<String, serde_json::Value> = std::fs::read_to_string(&path).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default();
    m.into_iter().filter_map(|(h, v)| Some((h, serde_json::from_value(v["freeze"].clone()).ok()?, v["read_at"].as_str().unwrap_or("?").to_string()))).collect()
}

/// Lifts the freeze; returns the one that was in force.
pub fn thaw() -> std::io::Result<Option<Freeze>> {
    let was = current();
    match std::fs::remove_file(freeze_path()) {
        Ok(()) => Ok(was),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Where a host keeps the fleet's freeze: `recover_freeze_file`, else this.
pub const DEFAULT_HOST_FREEZE_FILE: &str = "/var/lib/recover/freeze.json";

pub fn gate() -> Option<GateState> {
    serde_json::from_str(&std::fs::read_to_string(gate_path()).ok()?).ok()
}

/// The shared folder (made if missing), for records every operator reads: approvals, plans
/// applied, run-log heads.
pub fn shared_subdir(name: &str) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    make_shared()?;
    let d = shared_dir().join(name);
    if !d.is_dir() {
        std::fs::DirBuilder::new().mode(0o775).create(&d)?;
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o775))?;
    }
    Ok(d)
}

/// Writes `text` to `dir/name` only if no such file exists (O_EXCL), mode 0644: a record
/// that is never written over. `Err(AlreadyExists)` when it is there.
pub fn create_record(dir: &Path, name: &str, text: &str) -> std::io::Result<PathBuf> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let p = dir.join(name);
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o644).open(&p)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o644))?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    Ok(p)
}

pub fn record_gate(state: &GateState) -> std::io::Result<()> {
    write_shared(&gate_path(), &serde_json::to_string_pretty(state).unwrap_or_default())
}

/// Why automation may not act now; `None` when it may (no freeze, gate green, fresh, and
/// recorded for the same baseline and inventory as `key`).
pub fn automation_blocked(key: Option<&GateKey>) -> Option<String> {
    if let Some(why) = shared_dir_problem() {
        return Some(why);
    }
    match state() {
        Ok(Some(f)) => return Some(format!("automation is frozen since {} by {}: {}", f.since, f.by, f.reason)),
        Err(why) => return Some(why),
        Ok(None) => {}
    }
    let Some(g) = gate() else { return Some(format!("the automation gate has not been evaluated (run `recover gate`; looked in {})", gate_path().display())) };
    if !g.green {
        return Some(format!("the automation gate is not green: {}", g.unmet.join("; ")));
    }
    let max = gate_max_age();
    let age = chrono::DateTime::parse_from_rfc3339(&g.at).map(|t| chrono::Utc::now().signed_duration_since(t).num_seconds()).unwrap_or(i64::MAX);
    if age > max {
        return Some(format!("the automation gate was last green {age}s ago (more than {max}s): run `recover gate` again"));
    }
    if let Some(k) = key {
        if g.baseline_sha256.as_deref() != Some(k.baseline_sha256.as_str()) {
            return Some(format!("the green gate was recorded for another baseline ({}): run `recover gate` with this run's baseline", g.baseline.as_deref().unwrap_or("unknown")));
        }
        if g.inventory_sha256.as_deref() != Some(k.inventory_sha256.as_str()) {
            return Some("the green gate was recorded for another inventory (or it changed since): run `recover gate` again".into());
        }
    }
    None
}
