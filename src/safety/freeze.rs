//! The SOP's automation freeze (section 2) and the automation gate's last
//! result (section 12.2), as files in the state folder. `--automation` runs
//! refuse while frozen, and unless the gate was found green recently.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

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
}

/// How old a green gate may be and still count.
pub const GATE_MAX_AGE_SECS: i64 = 15 * 60;

fn freeze_path() -> PathBuf {
    crate::report::state_dir().join("freeze.json")
}

fn gate_path() -> PathBuf {
    crate::report::state_dir().join("gate.json")
}

pub fn current() -> Option<Freeze> {
    serde_json::from_str(&std::fs::read_to_string(freeze_path()).ok()?).ok()
}

pub fn freeze(reason: &str, by: &str) -> std::io::Result<Freeze> {
    let f = Freeze { reason: reason.to_string(), by: by.to_string(), since: chrono::Utc::now().to_rfc3339() };
    std::fs::create_dir_all(crate::report::state_dir())?;
    let tmp = freeze_path().with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_string_pretty(&f).unwrap_or_default())?;
    std::fs::rename(tmp, freeze_path())?;
    Ok(f)
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

pub fn gate() -> Option<GateState> {
    serde_json::from_str(&std::fs::read_to_string(gate_path()).ok()?).ok()
}

pub fn record_gate(state: &GateState) -> std::io::Result<()> {
    std::fs::create_dir_all(crate::report::state_dir())?;
    std::fs::write(gate_path(), serde_json::to_string_pretty(state).unwrap_or_default())
}

/// Why automation may not act now; `None` when it may (no freeze, gate green and fresh).
pub fn automation_blocked() -> Option<String> {
    if let Some(f) = current() {
        return Some(format!("automation is frozen since {} by {}: {}", f.since, f.by, f.reason));
    }
    let Some(g) = gate() else { return Some("the automation gate has not been evaluated (run `recover gate`)".into()) };
    if !g.green {
        return Some(format!("the automation gate is not green: {}", g.unmet.join("; ")));
    }
    let age = chrono::DateTime::parse_from_rfc3339(&g.at).map(|t| chrono::Utc::now().signed_duration_since(t).num_seconds()).unwrap_or(i64::MAX);
    if age > GATE_MAX_AGE_SECS {
        return Some(format!("the automation gate was last green {age}s ago (more than {GATE_MAX_AGE_SECS}s): run `recover gate` again"));
    }
    None
}
