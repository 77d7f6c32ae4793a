//! `recover`: inventory-driven remote execution and remediation for
//! cold-start recovery of a small fleet. See `DESIGN.md` in the shared docs and
//! the README for the architecture; each module's doc says what it owns.

pub mod ansible_cfg;
pub mod assets;
pub mod baseline;
pub mod cli;
pub mod digest;
pub mod docker;
pub mod error;
pub mod executor;
pub mod facts;
pub mod gather;
pub mod hostpattern;
pub mod gates;
pub mod inputs;
pub mod inventory;
pub mod modules;
pub mod plan;
pub mod pyansible;
pub mod pyre;
pub mod playbook;
pub mod report;
pub mod safety;
pub mod secrets;
pub mod serve;
pub mod template;
pub mod transport;
pub mod vault;
pub mod yaml;

/// The ansible-core release whose language recover follows (and whose suites it is compared
/// with): `ansible_version` in every play, for roles that test it (`ansible_version.full is
/// version('2.12', '>=')`).
pub const ANSIBLE_CORE_VERSION: &str = "2.19.14";

/// `ansible_version`, as ansible-core gives it: full, major, minor, revision, string.
pub fn ansible_version() -> serde_json::Value {
    let n: Vec<u64> = ANSIBLE_CORE_VERSION.split('.').map(|p| p.parse().unwrap_or(0)).collect();
    serde_json::json!({
        "full": ANSIBLE_CORE_VERSION, "major": n[0], "minor": n[1], "revision": n[2], "string": ANSIBLE_CORE_VERSION,
    })
}
