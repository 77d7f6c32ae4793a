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

pub const FORMAT: u32 = 2;

/// Files hashed whole in a fingerprint up to this size (recover.yml `plan_hash_max_bytes`).
pub const DEFAULT_HASH_MAX_BYTES: u64 = 64 * 1024 * 1024;
/// A folder's entries are kept in the plan (to name the one that changed) up to this many.
const LISTING_CAP: usize = 20_000;
/// An approval's life unless `--expires` says otherwise.
pub const DEFAULT_EXPIRY_SECS: i64 = 3600;
/// The longest an approval may hold (recover.yml `approval_max_age`).
pub const MAX_EXPIRY_SECS: i64 = 24 * 3600;

pub use crate::digest::{human_bytes, sha256_hex, short};

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
struct Header {
    recover_plan: u32,
    digest: String,
}

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

/// An approver's name as recover keeps it: trimmed and case-folded, from a safe character set
/// (letters, digits, `.`, `_`, `@`, `-`; 1 to 64 of them, starting with a letter or digit), so
/// that `Alice` and `alice` are one person and no name carries terminal control codes.
pub fn approver_name(raw: &str) -> Result<String, String> {
    let n = raw.trim().to_lowercase();
    let ok = !n.is_empty()
        && n.len() <= 64
        && n.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && n.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-'));
    if ok {
        Ok(n)
    } else {
        Err(format!("{:?} is not an approver name: use 1 to 64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit", crate::report::clean_line(raw)))
    }
}

/// A plan file as read: the plan, its digest, its approvals.
#[derive(Clone, Debug)]
pub struct PlanFile {
    pub plan: Plan,
    pub digest: String,
    pub approvals: Vec<Approval>,
}

fn line_of<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

impl PlanFile {
    pub fn new(plan: Plan) -> PlanFile {
        let digest = sha256_hex(line_of(&plan).as_bytes());
        PlanFile { plan, digest, approvals: Vec::new() }
    }

    pub fn to_text(&self) -> String {
        let mut s = line_of(&Header { recover_plan: FORMAT, digest: self.digest.clone() });
        s.push('\n');
        s.push_str(&line_of(&self.plan));
        s.push('\n');
        for a in &self.approvals {
            s.push_str(&line_of(a));
            s.push('\n');
        }
        s
    }

    /// Writes the file whole (a temporary file renamed over it), mode 0600.
    pub fn write(&self, path: &Path) -> Result<(), String> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let tmp = dir.join(format!(".{}.tmp-{}", path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(), std::process::id()));
        let res = (|| {
            let mut f = std::fs::OpenOptions::new().create(true).truncate(true).write(true).mode(0o600).open(&tmp)?;
            f.write_all(self.to_text().as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)
        })();
        res.map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            format!("cannot write the plan {}: {e}", path.display())
        })
    }

    /// Reads and checks a plan file: every line must be exactly what recover writes for its
    /// content, and every digest must match. `Err` names the line and why.
    pub fn read(path: &Path) -> Result<PlanFile, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read the plan {}: {e}", path.display()))?;
        let p = path.display();
        let text = std::str::from_utf8(&bytes).map_err(|e| format!("{p}: not a recover plan (not UTF-8 text at byte {})", e.valid_up_to()))?;
        if !text.ends_with('\n') {
            return Err(format!("{p}: the plan file was altered: its last line is incomplete"));
        }
        let lines: Vec<&str> = text[..text.len() - 1].split('\n').collect();
        if lines.len() < 2 {
            return Err(format!("{p}: not a recover plan (expected a header line and a plan line)"));
        }
        fn exact<T: Serialize + for<'de> Deserialize<'de>>(p: &str, n: usize, line: &str, what: &str) -> Result<T, String> {
            let v: T = serde_json::from_str(line).map_err(|e| format!("{p}:{n}:{}: the plan file was altered: its {what} line does not read ({e})", e.column()))?;
            if line_of(&v) != line {
                return Err(format!("{p}:{n}: the plan file was altered: its {what} line is not as recover wrote it"));
            }
            Ok(v)
        }
        let ps = p.to_string();
        let header: Header = exact(&ps, 1, lines[0], "header")?;
        if header.recover_plan != FORMAT {
            return Err(format!("{p}:1: plan format {} (this recover reads format {FORMAT})", header.recover_plan));
        }
        let digest = sha256_hex(lines[1].as_bytes());
        if digest != header.digest {
            return Err(format!("{p}:2: the plan file was altered: the plan's sha256 is {digest}, its header says {}", header.digest));
        }
        let plan: Plan = exact(&ps, 2, lines[1], "plan")?;
        let mut approvals = Vec::new();
        for (i, line) in lines.iter().enumerate().skip(2) {
            let a: Approval = exact(&ps, i + 1, line, "approval")?;
            if a.plan_digest != digest {
                return Err(format!("{p}:{}: the approval by {} is for another plan ({})", i + 1, a.approver, short(&a.plan_digest)));
            }
            if a.computed_digest() != a.digest {
                return Err(format!("{p}:{}: the plan file was altered: the approval by {} does not match its digest", i + 1, a.approver));
            }
            approvals.push(a);
        }
        Ok(PlanFile { plan, digest, approvals })
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

/// The state of one host's touched paths and services, in one round trip: the script to run
/// (as `read_as`), and how to read what it prints.
pub fn fingerprint_script(paths: &[String], services: &[ServiceProbe], read_as: Option<&str>, max_bytes: u64) -> String {
    let mut s = String::from(
        "fp() { i=$1; p=$2; \
         if [ ! -e \"$p\" ] && [ ! -L \"$p\" ]; then printf 'P\\t%s\\tabsent\\n' \"$i\"; return; fi; \
         if [ -L \"$p\" ] && [ ! -e \"$p\" ]; then printf 'P\\t%s\\tdangling symlink\\t-\\t-\\t-\\t-\\t-\\t-\\t-\\t%s\\n' \"$i\" \"$(readlink -- \"$p\")\"; return; fi; \
         q=$(realpath -e -- \"$p\") || q=$p; \
         m=$(stat -c '%F\t%s\t%a\t%U:%G\t%.9Y' -- \"$q\"); \
         if [ -d \"$q\" ]; then \
           t=$(mktemp) || return; \
           find \"$q\" -mindepth 1 -printf '%P\\t%y\\t%s\\t%m\\t%u:%g\\t%T@\\n' 2>/dev/null | LC_ALL=C sort > \"$t\"; \
           d=$(sha256sum < \"$t\" | cut -c1-64); n=$(wc -l < \"$t\"); b=$(awk -F'\\t' '{s+=$3} END {printf \"%d\", s}' \"$t\"); \
           printf 'P\\t%s\\t%s\\t%s\\t%s\\t%s\\t%s\\n' \"$i\" \"$m\" \"$d\" \"$n\" \"$b\" \"$q\"; \
           if [ \"$n\" -le ",
    );
    s.push_str(&LISTING_CAP.to_string());
    s.push_str(
        " ]; then awk -v i=\"$i\" '{print \"L\\t\" i \"\\t\" $0}' \"$t\"; fi; rm -f \"$t\"; \
         elif [ -f \"$q\" ] && [ \"$(stat -c %s -- \"$q\")\" -le ",
    );
    s.push_str(&max_bytes.to_string());
    s.push_str(
        " ]; then d=$(sha256sum -- \"$q\" | cut -c1-64); printf 'P\\t%s\\t%s\\t%s\\t-\\t-\\t%s\\n' \"$i\" \"$m\" \"${d:--}\" \"$q\"; \
         else printf 'P\\t%s\\t%s\\t-\\t-\\t-\\t%s\\n' \"$i\" \"$m\" \"$q\"; fi; }\n",
    );
    for (i, p) in paths.iter().enumerate() {
        s.push_str(&format!("fp {i} {}\n", quote::quote(p)));
    }
    for (i, probe) in services.iter().enumerate() {
        let line = match probe.become_user.as_deref().filter(|u| Some(*u) != read_as) {
            Some(u) => format!("sudo -n -H -u {} -- sh -c {}", quote::quote(u), quote::quote(&probe.command)),
            None => format!("sh -c {}", quote::quote(&probe.command)),
        };
        s.push_str(&format!("o=$( ({line}) 2>/dev/null </dev/null ); r=$?; printf 'S\\t{i}\\t%s\\t%s\\n' \"$r\" \"$(printf %s \"$o\" | base64 -w0)\"\n"));
    }
    s.push_str("exit 0\n");
    s
}

fn kind_word(stat: &str) -> String {
    match stat {
        "regular file" | "regular empty file" => "file".into(),
        "directory" => "directory".into(),
        "symbolic link" => "symlink".into(),
        other => other.to_string(),
    }
}

/// Reads the script's output into a fingerprint; `container[i]` says whether service i is a
/// container (its status is `docker inspect`'s JSON).
pub fn parse_fingerprint(out: &Output, paths: &[String], services: &[ServiceProbe], read_as: Option<String>, max_bytes: u64) -> Result<Fingerprint, String> {
    use base64::Engine as _;
    if out.rc != 0 {
        return Err(format!("the fingerprint script exited {}: {}", out.rc, out.stderr_str().trim()));
    }
    let mut fp = Fingerprint { read_as, hash_max_bytes: max_bytes, read_at: chrono::Utc::now().to_rfc3339(), ..Default::default() };
    let mut by_index: BTreeMap<usize, PathState> = BTreeMap::new();
    let text = out.stdout_str();
    for line in text.lines() {
        let f: Vec<&str> = line.splitn(3, '\t').collect();
        if f.len() < 3 {
            continue;
        }
        let Ok(i) = f[1].parse::<usize>() else { continue };
        match f[0] {
            "P" if i < paths.len() => {
                let r: Vec<&str> = f[2].split('\t').collect();
                let opt = |k: usize| r.get(k).filter(|v| **v != "-" && !v.is_empty()).map(|v| v.to_string());
                let st = if r[0] == "absent" {
                    PathState { path: paths[i].clone(), kind: "absent".into(), ..Default::default() }
                } else {
                    PathState {
                        path: paths[i].clone(),
                        kind: kind_word(r[0]),
                        size: opt(1).and_then(|v| v.parse().ok()),
                        mode: opt(2),
                        owner: opt(3),
                        mtime: opt(4),
                        sha256: opt(5),
                        entries: opt(6).and_then(|v| v.parse().ok()),
                        bytes: opt(7).and_then(|v| v.parse().ok()),
                        listing: None,
                        resolved: opt(8).filter(|r| *r != paths[i]),
                    }
                };
                by_index.insert(i, st);
            }
            "L" => {
                if let Some(st) = by_index.get_mut(&i) {
                    st.listing.get_or_insert_with(Vec::new).push(f[2].to_string());
                }
            }
            "S" if i < services.len() => {
                let r: Vec<&str> = f[2].splitn(2, '\t').collect();
                let rc: i32 = r[0].parse().unwrap_or(-1);
                let stdout = base64::engine::general_purpose::STANDARD.decode(r.get(1).unwrap_or(&"").trim()).unwrap_or_default();
                let state = if services[i].container {
                    match crate::docker::containers_from(&Output { rc, stdout, stderr: Vec::new() }) {
                        Ok(cs) => format!("{:?}", crate::docker::state_of(&cs)).to_lowercase(),
                        Err(e) => format!("unknown ({e})"),
                    }
                } else if rc == 0 {
                    "running".into()
                } else {
                    "stopped".into()
                };
                fp.services.push(ServiceState { name: services[i].name.clone(), state });
            }
            _ => {}
        }
    }
    for (i, p) in paths.iter().enumerate() {
        match by_index.remove(&i) {
            Some(st) => fp.paths.push(st),
            None => return Err(format!("the fingerprint of {p} was not read (the script's output ended early)")),
        }
    }
    if fp.services.len() != services.len() {
        return Err("the state of every service was not read (the script's output ended early)".into());
    }
    Ok(fp)
}


/// What differs between the plan's fingerprint and the host's now, in words (empty: nothing).
pub fn differences(was: &Fingerprint, now: &Fingerprint) -> Vec<String> {
    let mut out = Vec::new();
    for a in &was.paths {
        let Some(b) = now.paths.iter().find(|b| b.path == a.path) else {
            out.push(format!("{} was not read", a.path));
            continue;
        };
        if a.kind != b.kind {
            out.push(format!("{} was {} and is now {}", a.path, article(&a.kind), article(&b.kind)));
            continue;
        }
        if a.resolved != b.resolved {
            let to = |r: &Option<String>| r.clone().unwrap_or_else(|| "itself".into());
            out.push(format!("{} resolved to {} and now resolves to {}", a.path, to(&a.resolved), to(&b.resolved)));
            continue;
        }
        if a.kind == "directory" {
            if a.sha256 != b.sha256 {
                let what = match (&a.listing, &b.listing) {
                    (Some(x), Some(y)) => listing_change(x, y),
                    _ => None,
                };
                let sizes = format!(
                    "{} entries, {} -> {} entries, {}",
                    a.entries.unwrap_or(0),
                    human_bytes(a.bytes.unwrap_or(0)),
                    b.entries.unwrap_or(0),
                    human_bytes(b.bytes.unwrap_or(0))
                );
                out.push(match what {
                    Some(w) => format!("{}: {w} ({sizes})", a.path),
                    None => format!("{}: its contents changed ({sizes})", a.path),
                });
            }
            for (k, x, y) in [("mode", &a.mode, &b.mode), ("owner", &a.owner, &b.owner)] {
                if x != y {
                    out.push(format!("{} changed {k} {} -> {}", a.path, x.as_deref().unwrap_or("-"), y.as_deref().unwrap_or("-")));
                }
            }
            continue;
        }
        if a.size != b.size {
            out.push(format!("{} changed size {} -> {}", a.path, human_bytes(a.size.unwrap_or(0)), human_bytes(b.size.unwrap_or(0))));
        } else if a.sha256 != b.sha256 {
            out.push(format!("{} changed content (sha256 {} -> {})", a.path, short(a.sha256.as_deref().unwrap_or("-")), short(b.sha256.as_deref().unwrap_or("-"))));
        }
        for (k, x, y) in [("mode", &a.mode, &b.mode), ("owner", &a.owner, &b.owner), ("mtime", &a.mtime, &b.mtime)] {
            if x != y {
                let (x, y) = (x.as_deref().unwrap_or("-"), y.as_deref().unwrap_or("-"));
                let (x, y) = if k == "mtime" { (when(x), when(y)) } else { (x.to_string(), y.to_string()) };
                out.push(format!("{} changed {k} {x} -> {y}", a.path));
            }
        }
    }
    for a in &was.services {
        let b = now.services.iter().find(|b| b.name == a.name).map(|b| b.state.as_str()).unwrap_or("not read");
        if a.state != b {
            out.push(format!("service {} was {} and is now {b}", a.name, a.state));
        }
    }
    out
}

/// An epoch time as stat or find print it (`1796236463.080978153`), as a UTC date to the
/// nanosecond; anything else as it is.
fn when(epoch: &str) -> String {
    let (secs, frac) = epoch.split_once('.').unwrap_or((epoch, "0"));
    let nanos: u32 = format!("{:0<9}", &frac[..frac.len().min(9)]).parse().unwrap_or(0);
    match secs.parse::<i64>().ok().and_then(|s| chrono::DateTime::from_timestamp(s, nanos)) {
        Some(t) => t.format("%Y-%m-%d %H:%M:%S%.9f UTC").to_string(),
        None => epoch.to_string(),
    }
}

fn article(kind: &str) -> String {
    match kind {
        "absent" => "absent".into(),
        k => format!("a {k}"),
    }
}

/// The first entry of a folder that differs: added, removed or changed.
fn listing_change(was: &[String], now: &[String]) -> Option<String> {
    let split = |l: &String| -> (String, String) {
        let mut it = l.splitn(2, '\t');
        (it.next().unwrap_or_default().to_string(), it.next().unwrap_or_default().to_string())
    };
    let a: BTreeMap<String, String> = was.iter().map(split).collect();
    let b: BTreeMap<String, String> = now.iter().map(split).collect();
    for (k, v) in &a {
        match b.get(k) {
            None => return Some(format!("{k} was removed")),
            Some(w) if w != v => {
                let f = |s: &str| s.split('\t').map(str::to_string).collect::<Vec<_>>();
                let (x, y) = (f(v), f(w));
                let names = ["type", "size", "mode", "owner", "mtime"];
                let changed: Vec<String> = names
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| x.get(*i) != y.get(*i))
                    .map(|(i, n)| match *n {
                        "size" => format!("size {} -> {}", human_bytes(x.get(i).and_then(|s| s.parse().ok()).unwrap_or(0)), human_bytes(y.get(i).and_then(|s| s.parse().ok()).unwrap_or(0))),
                        "mtime" => format!("mtime {} -> {}", when(x.get(i).map(String::as_str).unwrap_or("-")), when(y.get(i).map(String::as_str).unwrap_or("-"))),
                        n => format!("{n} {} -> {}", x.get(i).map(String::as_str).unwrap_or("-"), y.get(i).map(String::as_str).unwrap_or("-")),
                    })
                    .collect();
                return Some(format!("{k} changed {}", changed.join(", ")));
            }
            _ => {}
        }
    }
    b.keys().find(|k| !a.contains_key(*k)).map(|k| format!("{k} was added"))
}

/// What a run does with plans: record the dry-run's steps, or hold a real run to a plan.
#[derive(Debug)]
pub enum Mode {
    /// `--save-plan`: each host's steps, in the order the dry-run reached them.
    Record(std::sync::Mutex<BTreeMap<String, Vec<StepEntry>>>),
    /// `recover apply`: every step that changes a host must be the plan's.
    Apply(std::sync::Arc<PlanFile>),
}

/// What to fingerprint on one host: every path and service its changing steps touch, read as
/// root when a step becomes another user (the data folders are theirs).
pub fn targets(steps: &[StepEntry]) -> (Vec<String>, Vec<ServiceProbe>, Option<String>) {
    let mut paths: Vec<String> = steps.iter().flat_map(|s| s.paths.iter().cloned()).collect();
    paths.sort();
    paths.dedup();
    let mut probes: Vec<ServiceProbe> = Vec::new();
    for p in steps.iter().flat_map(|s| s.probes.iter()) {
        if !probes.iter().any(|q| q.name == p.name) {
            probes.push(p.clone());
        }
    }
    let read_as = steps.iter().any(|s| s.become_user.is_some()).then(|| "root".to_string());
    (paths, probes, read_as)
}

/// Reads a host's fingerprint over its connection, in one command.
pub async fn read_fingerprint(conn: &crate::transport::Connection, steps: &[StepEntry], max_bytes: u64) -> Result<Fingerprint, String> {
    let (paths, probes, read_as) = targets(steps);
    if paths.iter().any(|p| p.contains('\n') || p.contains('\t')) {
        return Err("a touched path holds a newline or a tab; recover cannot fingerprint it".into());
    }
    let script = fingerprint_script(&paths, &probes, read_as.as_deref(), max_bytes);
    let cmd = crate::transport::Cmd::shell(script).become_user(read_as.clone()).label("read the plan's fingerprint");
    let out = conn.exec(&cmd).await.map_err(|e| e.to_string())?;
    parse_fingerprint(&out, &paths, &probes, read_as, max_bytes)
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

/// `plan_hash_max_bytes:` in recover.yml.
pub fn hash_max_bytes() -> u64 {
    crate::safety::freeze::config_value("plan_hash_max_bytes").and_then(|v| v.trim().parse().ok()).unwrap_or(DEFAULT_HASH_MAX_BYTES)
}

/// Parses `30m`, `2h`, `90s`, `1d` or seconds (above 0).
pub fn parse_duration(v: &str) -> Result<i64, String> {
    match crate::safety::freeze::parse_secs(v) {
        Some(n) if n > 0 => Ok(n),
        _ => Err(format!("{:?} is not a duration (like 30m, 1h, 90s)", v.trim())),
    }
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
