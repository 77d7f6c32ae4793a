//! Approvers of the board (`recover serve add-approver NAME`): people who may approve a saved
//! plan in a browser. Each has a secret, shown once when registered and kept only as a salted
//! PBKDF2-SHA256 hash in the shared folder (`board-approvers/NAME.json`, created exclusively,
//! mode 0600), which every operator's `recover apply` reads. An approval made in the browser is
//! the same record `recover approve` writes, with the identity `board:NAME`.

use pbkdf2::pbkdf2_hmac;
use sha2::Sha256;

/// PBKDF2 rounds of a board approver's secret.
const ROUNDS: u32 = 200_000;

fn folder() -> std::path::PathBuf {
    crate::safety::freeze::shared_dir().join("board-approvers")
}

fn random_hex(n: usize) -> Result<String, String> {
    use std::io::Read;
    let mut b = vec![0u8; n];
    std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b)).map_err(|e| format!("cannot read /dev/urandom: {e}"))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// A random token (sessions, CSRF): 32 bytes, hex.
pub fn token() -> Result<String, String> {
    random_hex(32)
}

fn hash(secret: &str, salt: &str) -> String {
    let mut out = [0u8; 32];
    pbkdf2_hmac::<Sha256>(secret.as_bytes(), salt.as_bytes(), ROUNDS, &mut out);
    out.iter().map(|x| format!("{x:02x}")).collect()
}

/// The identity of a board approver's approvals.
pub fn identity(name: &str) -> String {
    format!("board:{name}")
}

/// Registers `name` (a safe approver name) and returns its secret, to be shown once.
pub fn add(name: &str) -> Result<String, String> {
    let name = super::names::approver_name(name)?;
    let dir = crate::safety::freeze::shared_subdir("board-approvers").map_err(|e| format!("cannot use the shared folder {}: {e}", crate::safety::freeze::shared_dir().display()))?;
    let secret = random_hex(24)?;
    let salt = random_hex(16)?;
    let record = serde_json::json!({"name": name, "salt": salt, "pbkdf2_sha256": hash(&secret, &salt), "rounds": ROUNDS, "added": chrono::Utc::now().to_rfc3339()});
    let path = crate::safety::freeze::create_record(&dir, &format!("{name}.json"), &format!("{record}\n")).map_err(|e| format!("{name} is registered already, or {} cannot be written: {e}", dir.display()))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(secret)
}

fn record(name: &str) -> Option<serde_json::Value> {
    let name = super::names::approver_name(name).ok()?;
    let text = std::fs::read_to_string(folder().join(format!("{name}.json"))).ok()?;
    serde_json::from_str(&text).ok()
}

/// Whether `name` is a registered board approver.
pub fn registered(name: &str) -> bool {
    record(name).is_some()
}

/// Whether `secret` is `name`'s (compared in constant time).
pub fn check(name: &str, secret: &str) -> bool {
    let Some(r) = record(name) else { return false };
    let (Some(salt), Some(want)) = (r["salt"].as_str(), r["pbkdf2_sha256"].as_str()) else { return false };
    let got = hash(secret.trim(), salt);
    got.len() == want.len() && got.bytes().zip(want.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}
