//! Saved plans (`play --dry-run --save-plan`, `plan show`, `approve`, `apply`): the commander
//! approves the exact plan, and `recover apply` runs exactly that plan or nothing.
//!
//! A plan file is JSON lines, each written by recover and checked byte for byte when read:
//!
//! 1. a header: `{"recover_plan":1,"digest":SHA256}`, the sha256 of line 2's bytes;
//! 2. the plan: how it was made (version, author, time, playbook, inventory and baseline
//!    digests, the invocation), the dry-run's events (for `plan show`), and per host the steps
//!    (module, rendered arguments, commands, diff, tier, backups) and the fingerprint of the
//!    state the plan was made from (touched paths and services);
//! 3. one line per approval, each with a digest over the plan's digest and its own fields.
//!
//! Any edited byte makes the file fail to read: a line that is not what recover would write
//! for its content, a digest that does not match, a line that does not parse.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::transport::{quote, Output};

pub mod approval;
pub mod board_approvers;
mod names;
mod file;
mod fingerprint;

pub use approval::*;
pub use names::approver_name;
pub use file::PlanFile;
pub use fingerprint::{differences, read_fingerprint, targets};

pub const FORMAT: u32 = 2;

/// Files hashed whole in a fingerprint up to this size (recover.yml `plan_hash_max_bytes`).
pub const DEFAULT_HASH_MAX_BYTES: u64 = 64 * 1024 * 1024;

pub use crate::digest::{human_bytes, sha256_hex, short};

/// A file's or a set of files' identity: where, and the sha256 of their contents.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Source {
    pub paths: Vec<String>,
    pub sha256: String,
}

/// What `apply` runs again: the playbook and the options the dry-run had.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Invocation {
    /// The folder the dry-run ran in: `apply` runs there (the project, its recover.yml).
    pub cwd: String,
    pub playbook: String,
    pub inventory: Vec<String>,
    pub extra_vars: Vec<String>,
    pub limit: Option<String>,
    pub host: Option<String>,
    pub tags: Vec<String>,
    pub skip_tags: Vec<String>,
    pub forks: Option<u32>,
    pub vault_password_file: Vec<String>,
    pub vault_id: Vec<String>,
}

/// One step of one host, as the dry-run planned it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct StepEntry {
    /// `PLAY / TASK #N`: the N-th step of that name on the host.
    pub key: String,
    pub task: String,
    pub module: String,
    /// `read` (ran in the dry-run, read-only), `change` (would change the host) or `ok`.
    pub kind: String,
    /// The rendered arguments (absent under no_log) and their digest.
    pub args: Option<Json>,
    pub args_sha256: String,
    pub commands: Vec<String>,
    pub commands_sha256: String,
    pub diff: Option<String>,
    pub diff_sha256: Option<String>,
    pub tier: Option<String>,
    pub reason: Option<String>,
    /// The paths the engine backs up (verified) before the step runs.
    pub backups: Vec<String>,
    pub requirement: Option<String>,
    /// A read-only step's output (stdout, rc) digest, and whether it ran before any change.
    pub output_sha256: Option<String>,
    pub before_change: bool,
    /// Paths and services the step touches (for the fingerprint).
    pub paths: Vec<String>,
    pub services: Vec<String>,
    /// How to read each service's state (its manager's status command).
    pub probes: Vec<ServiceProbe>,
    pub become_user: Option<String>,
}

/// A service's status command, from the host's `services` entry when the plan was made.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct ServiceProbe {
    pub name: String,
    pub command: String,
    pub become_user: Option<String>,
    /// Its status is `docker inspect`'s JSON.
    pub container: bool,
}

/// One touched path as it was.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct PathState {
    pub path: String,
    /// `absent`, `file`, `directory`, `symlink`, or stat's word for others.
    pub kind: String,
    pub size: Option<u64>,
    pub mode: Option<String>,
    pub owner: Option<String>,
    pub mtime: Option<String>,
    /// A file's content sha256 (up to the size limit); a folder's tree digest.
    pub sha256: Option<String>,
    /// A folder: how many entries below it, and their bytes.
    pub entries: Option<u64>,
    pub bytes: Option<u64>,
    /// A folder's entries (`relpath\ttype\tsize\tmode\towner\tmtime`), up to a cap.
    pub listing: Option<Vec<String>>,
    /// What the path resolves to on the host when that is another path (it is, or lies
    /// below, a symlink): the rest of the state is of that target.
    pub resolved: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct ServiceState {
    pub name: String,
    pub state: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Fingerprint {
    /// Read as this user (root when the plan's steps become someone).
    pub read_as: Option<String>,
    pub hash_max_bytes: u64,
    pub paths: Vec<PathState>,
    pub services: Vec<ServiceState>,
    pub read_at: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct HostPlan {
    pub steps: Vec<StepEntry>,
    pub fingerprint: Fingerprint,
}

impl HostPlan {
    pub fn changes(&self) -> impl Iterator<Item = &StepEntry> {
        self.steps.iter().filter(|s| s.kind == "change")
    }
}

/// Everything the dry-run decided, and what it was decided on.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub recover_version: String,
    pub created: String,
    pub created_unix: i64,
    pub author: String,
    pub run_id: String,
    /// `recover_timestamp` of the dry-run: `apply` uses it, so artifact names are the plan's.
    pub timestamp: String,
    pub playbook: Source,
    pub inventory: Source,
    pub baseline: Option<Source>,
    pub invocation: Invocation,
    /// Every local file the dry-run read (and the folders they were found in), with its
    /// digest: `apply` refuses when one differs (see [`crate::inputs`]).
    pub inputs: BTreeMap<String, String>,
    /// Each host's connection as resolved (address, port, user, key, ssh arguments, become):
    /// `apply` refuses when a host would be reached another way.
    pub connections: BTreeMap<String, Json>,
    pub hosts: BTreeMap<String, HostPlan>,
    /// The dry-run's events, for `plan show`.
    pub events: Vec<Json>,
}

impl Plan {
    pub fn highest_tier(&self) -> Option<crate::safety::Tier> {
        self.hosts.values().flat_map(|h| h.changes()).filter_map(|s| s.tier.as_deref().and_then(crate::safety::Tier::parse)).max()
    }
    pub fn change_count(&self) -> usize {
        self.hosts.values().map(|h| h.changes().count()).sum()
    }
}

/// Commands and arguments as compared between the plan and the run: random parts recover
/// puts in them (temporary file names, run ids) replaced.
pub fn normalized(s: &str) -> String {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let re = RE.get_or_init(|| regex::Regex::new(r"[0-9a-f]{12,}|\d{4}-\d\d-\d\d@\d\d:\d\d:\d\d").expect("a valid pattern"));
    re.replace_all(s, "#").into_owned()
}

pub fn digest_of(parts: &[String]) -> String {
    sha256_hex(normalized(&parts.join("\n")).as_bytes())
}

/// What a run does with plans: record the dry-run's steps, or hold a real run to a plan.
#[derive(Debug)]
pub enum Mode {
    /// `--save-plan`: each host's steps, in the order the dry-run reached them.
    Record(std::sync::Mutex<BTreeMap<String, Vec<StepEntry>>>),
    /// `recover apply`: every step that changes a host must be the plan's.
    Apply(std::sync::Arc<PlanFile>),
}

/// `plan_hash_max_bytes:` in recover.yml.
pub fn hash_max_bytes() -> u64 {
    crate::safety::freeze::config_value("plan_hash_max_bytes").and_then(|v| v.trim().parse().ok()).unwrap_or(DEFAULT_HASH_MAX_BYTES)
}

/// A host's connection as a plan records it: where and how it is reached (no secret).
pub fn connection_of(t: &crate::transport::Target) -> Json {
    serde_json::json!({
        "address": t.address, "port": t.port, "user": t.user, "key_file": t.key_file, "ssh_args": t.common_args, "local": t.local,
        "become_method": t.r#become.method.as_str(), "become_exe": t.r#become.exe, "become_flags": t.r#become.flags,
    })
}

/// sha256 of files (see `files_digest`), with the paths as given.
pub fn source_of(paths: &[PathBuf]) -> Source {
    Source { paths: paths.iter().map(|p| p.display().to_string()).collect(), sha256: crate::safety::freeze::files_digest(paths) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> PlanFile {
        PlanFile::new(Plan {
            recover_version: "0".into(),
            created: "t".into(),
            created_unix: 0,
            author: "alice".into(),
            run_id: "r".into(),
            timestamp: "ts".into(),
            playbook: Source { paths: vec!["p".into()], sha256: "x".into() },
            inventory: Source { paths: vec!["i".into()], sha256: "y".into() },
            baseline: None,
            invocation: Invocation::default(),
            inputs: BTreeMap::new(),
            connections: BTreeMap::new(),
            hosts: BTreeMap::new(),
            events: vec![serde_json::json!({"event": "task", "msg": "é \" \\ \n"})],
        })
    }

    #[test]
    fn every_flipped_byte_is_refused() {
        let mut pf = sample();
        pf.approvals.push(Approval::new(&pf.digest, "bob", "uid:1000", chrono::Utc::now(), 3600));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.plan");
        pf.write(&path).unwrap();
        let back = PlanFile::read(&path).unwrap();
        assert_eq!(back.plan, pf.plan);
        assert_eq!(back.approvals, pf.approvals);
        let bytes = std::fs::read(&path).unwrap();
        for i in 0..bytes.len() {
            for flip in [0x01u8, 0x20, 0x80] {
                let mut b = bytes.clone();
                b[i] ^= flip;
                std::fs::write(&path, &b).unwrap();
                assert!(PlanFile::read(&path).is_err(), "byte {i} ^ {flip:#x} was not noticed");
            }
        }
    }

    #[test]
    fn one_person_counts_once_by_name_or_identity() {
        let now = chrono::Utc::now();
        let a = |n: &str, id: &str| Approval::new("d", n, id, now, 60);
        let check = |v: Vec<Approval>| ApprovalCheck { valid: v, problems: vec![], needed: 2 };
        assert_eq!(check(vec![a("alice", "uid:1"), a("bob", "uid:2")]).distinct().len(), 2);
        assert_eq!(check(vec![a("alice", "uid:1"), a("bob", "uid:1")]).distinct().len(), 1, "one OS user is one person");
        assert_eq!(check(vec![a("alice", "uid:1"), a("alice", "uid:2")]).distinct().len(), 1, "one name is one person");
        assert_eq!(check(vec![a("alice", "uid:1"), a("bob", "uid:2"), a("bob", "uid:1")]).distinct().len(), 1);
        assert_eq!(approver_name("  Alice ").unwrap(), "alice");
        assert!(approver_name("mallory\r\x1b[2Kcommander").is_err());
        assert!(approver_name("").is_err() && approver_name("-x").is_err());
    }

    #[test]
    fn differences_name_what_changed() {
        let mut a = Fingerprint::default();
        a.paths.push(PathState { path: "/d".into(), kind: "directory".into(), sha256: Some("1".into()), entries: Some(1), bytes: Some(10), listing: Some(vec!["f\tf\t10\t600\tu:g\t1.0".into()]), ..Default::default() });
        a.paths.push(PathState { path: "/f".into(), kind: "file".into(), size: Some(1 << 30), sha256: Some("a".into()), ..Default::default() });
        a.services.push(ServiceState { name: "pg".into(), state: "stopped".into() });
        let mut b = a.clone();
        assert!(differences(&a, &b).is_empty());
        b.paths[0].sha256 = Some("2".into());
        b.paths[0].listing = Some(vec!["f\tf\t10\t600\tu:g\t2.0".into()]);
        b.paths[1].size = Some(1 << 31);
        b.services[0].state = "running".into();
        let d = differences(&a, &b);
        assert_eq!(d[0], "/d: f changed mtime 1970-01-01 00:00:01.000000000 UTC -> 1970-01-01 00:00:02.000000000 UTC (1 entries, 10 B -> 1 entries, 10 B)");
        assert_eq!(d[1], "/f changed size 1.0 GiB -> 2.0 GiB");
        assert_eq!(d[2], "service pg was stopped and is now running");
    }
}
