//! Verified backups, taken on the target host.
//!
//! 1. Free space: the backup folder must have room for the source's full size
//!    (uncompressed, so it is conservative); refused clearly when short.
//! 2. Archive: `tar -cp` of the paths (relative to `/`, numeric owners),
//!    gzip-compressed by `pigz` on every core when the host has it (plain
//!    `gzip` otherwise; the output is the same format), written to
//!    `NAME.partial` and renamed only when complete; a failed or interrupted
//!    write leaves no archive, only its removed partial.
//! 3. Verification: the archive is read end to end (`tar -t`, which checks
//!    gzip's CRC), its entry count must equal the source's, and its sha256 is
//!    computed again (at the same time as the listing) and must equal the one
//!    recorded.
//! 4. Manifest: `NAME.manifest.json` beside it (host, sources, run, task,
//!    sha256, entries, bytes, created at, tool version).
//!
//! Only a verified backup lets a destructive step run.

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::transport::{quote, Cmd, Connection, Output};

/// Where backup commands run: a host's connection, as a user.
pub struct Remote<'a> {
    pub conn: &'a Connection,
    pub host: &'a str,
    pub user: Option<String>,
}

impl Remote<'_> {
    pub async fn run(&self, cmd: Cmd) -> Result<Output, BackupError> {
        self.conn.exec(&cmd.become_user(self.user.clone())).await.map_err(|e| BackupError { lost: e.is_lost(), msg: e.to_string() })
    }
}

/// Why a backup was not taken: `lost` when the host went away (its step is then
/// unreachable, not refused: what ran on the host is unknown).
#[derive(Debug)]
pub struct BackupError {
    pub msg: String,
    pub lost: bool,
}

impl std::fmt::Display for BackupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.msg)
    }
}

impl From<BackupError> for String {
    fn from(e: BackupError) -> String {
        e.msg
    }
}

impl From<String> for BackupError {
    fn from(msg: String) -> BackupError {
        BackupError { msg, lost: false }
    }
}

/// A backup this run took and verified.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BackupRecord {
    pub id: String,
    pub host: String,
    pub archive: String,
    pub manifest: String,
    pub sources: Vec<String>,
    pub sha256: String,
    pub entries: u64,
    pub bytes: u64,
    pub source_bytes: u64,
    pub run_id: String,
    pub task: String,
    pub created_at: String,
    pub tool_version: String,
}

impl BackupRecord {
    /// Does this backup cover `path` (the path itself or a folder above it)?
    pub fn covers(&self, path: &str) -> bool {
        let p = path.trim_end_matches('/');
        self.sources.iter().any(|s| {
            let s = s.trim_end_matches('/');
            p == s || p.starts_with(&format!("{s}/"))
        })
    }
}

/// What to back up, and where.
pub struct BackupSpec {
    pub paths: Vec<String>,
    pub dest_dir: String,
    pub name: String,
    pub task: String,
    pub run_id: String,
}

/// `<name>-YYYYMMDD-HHMMSS-<run>-<n>.tar.gz`: the SOP's artifact naming, made unique by the run
/// id and a counter of this process (two backups in one second, in one run or two, never share
/// a name; [`take`] also reserves the name on the host exclusively).
pub fn archive_name(stem: &str, run_id: &str) -> String {
    format!("{}.tar.gz", unique_stem(stem, run_id))
}

/// `<slug>-YYYYMMDD-HHMMSS-<run>-<n>`: a name no other backup or kept copy of this or another
/// run has (see [`archive_name`]).
pub fn unique_stem(stem: &str, run_id: &str) -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let run: String = run_id.chars().filter(|c| c.is_ascii_alphanumeric()).take(8).collect();
    let run = if run.is_empty() { format!("p{}", std::process::id()) } else { run };
    format!("{}-{}-{run}-{n}", slug(stem), chrono::Local::now().format("%Y%m%d-%H%M%S"))
}

/// Lower-case letters, digits and dashes only.
pub fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let t = out.trim_matches('-').to_string();
    if t.is_empty() { "backup".into() } else { t.chars().take(80).collect() }
}

fn fault(name: &str) -> bool {
    std::env::var("RECOVER_FAULT").map(|f| f.split(',').any(|x| x == name)).unwrap_or(false)
}

/// Takes and verifies a backup; `Err` says why, and then nothing else ran.
///
/// Every source is resolved on the host first (`realpath`): a path that is a symlink, or lies
/// below one, is archived as what it points to (what a destructive step reaches through it).
/// The archive and its manifest are never written over: both are created exclusively, under
/// `spec.name` when it is free, else the first free `NAME-2`, `NAME-3` ...; the record names the
/// path it got.
pub async fn take(ctx: &Remote<'_>, spec: &BackupSpec) -> Result<BackupRecord, BackupError> {
    if spec.paths.is_empty() {
        return Err(String::from("nothing to back up").into());
    }
    for p in &spec.paths {
        if !p.starts_with('/') {
            return Err(BackupError::from(format!("backup source {p:?} is not an absolute path")));
        }
        if p.contains('\n') {
            return Err(BackupError::from(format!("backup source {p:?} holds a newline; refused")));
        }
    }
    let given = spec.paths.iter().map(|p| quote::quote(p)).collect::<Vec<_>>().join(" ");
    let dest = quote::quote(&spec.dest_dir);
    let run = |script: String| async move { ctx.run(Cmd::shell(script)).await };

    // 1. What each source resolves to, the free space and what the sources hold.
    let probe = run(format!(
        "set -e; umask 077; for p in {given}; do test -e \"$p\" || {{ echo \"MISSING $p\"; exit 3; }}; r=$(realpath -e -- \"$p\") || {{ echo \"UNRESOLVED $p\"; exit 3; }}; printf 'REAL %s\\n' \"$r\"; done; mkdir -p {dest}; \
         printf 'ROOT %s\\n' \"$(realpath -e -- {dest})\""
    ))
    .await?;
    let text = probe.stdout_str();
    if let Some(missing) = text.lines().find_map(|l| l.strip_prefix("MISSING ")) {
        return Err(BackupError::from(format!("backup source {missing} does not exist")));
    }
    if let Some(bad) = text.lines().find_map(|l| l.strip_prefix("UNRESOLVED ")) {
        return Err(BackupError::from(format!("backup source {bad} cannot be resolved on the host (realpath failed); refused")));
    }
    if !probe.ok() {
        return Err(BackupError::from(format!("cannot prepare the backup folder {}: {}", spec.dest_dir, probe.stderr_str().trim())));
    }
    let mut sources: Vec<String> = Vec::new();
    for r in text.lines().filter_map(|l| l.strip_prefix("REAL ")) {
        if !sources.iter().any(|s| crate::safety::paths::within(r, s)) {
            sources.retain(|s| !crate::safety::paths::within(s, r));
            sources.push(r.to_string());
        }
    }
    let root = text.lines().find_map(|l| l.strip_prefix("ROOT ")).unwrap_or(&spec.dest_dir).to_string();
    if let Some(s) = sources.iter().find(|s| crate::safety::paths::within(&root, s)) {
        return Err(BackupError::from(format!("the backup folder {} is {root} on the host, inside the source {s}: the archive would back up itself; refused", spec.dest_dir)));
    }
    let srcs = sources.iter().map(|p| quote::quote(p)).collect::<Vec<_>>().join(" ");
    let size = run(format!(
        "set -e; b=$(du -sb -- {srcs} | awk '{{s+=$1}} END {{print s+0}}'); f=$(df -B1 --output=avail -- {dest} | tail -1 | tr -d ' '); \
         n=$(find {srcs} ! -type s | wc -l); echo \"SIZE $b $f $n\""
    ))
    .await?;
    let text = size.stdout_str();
    let nums: Vec<u64> = text.lines().find_map(|l| l.strip_prefix("SIZE ")).unwrap_or("").split_whitespace().filter_map(|n| n.parse().ok()).collect();
    let [source_bytes, free, entries] = nums[..] else { return Err(BackupError::from(format!("cannot measure the backup source: {text}{}", size.stderr_str().trim()))) };
    let needed = source_bytes + 1024 * 1024;
    if free < needed {
        return Err(BackupError::from(format!(
            "not enough space for the backup in {}: {} free, {} needed for {} ({} bytes of source); nothing was changed",
            spec.dest_dir,
            human(free),
            human(needed),
            sources.join(", "),
            source_bytes
        )));
    }

    // 2. The archive, written whole or not at all, to a temporary name of its own (made
    //    exclusively by mktemp; `.partial`, removed on failure or a signal), then `.unverified`
    //    until it is verified and named.
    let rel = sources.iter().map(|p| quote::quote(p.trim_start_matches('/'))).collect::<Vec<_>>().join(" ");
    let name = quote::quote(&spec.name);
    let made = ctx
        .run(
            Cmd::shell(format!(
                "set -e; umask 077; t=$(mktemp -p {dest} .{name}.XXXXXXXX.partial); trap 'rm -f \"$t\"' EXIT; trap 'rm -f \"$t\"; exit 143' TERM INT HUP; cd /; z=gzip; if command -v pigz >/dev/null 2>&1; then z=pigz; fi; \
                 tar --numeric-owner --use-compress-program=\"$z\" -cpf \"$t\" -- {rel}; u=\"${{t%.partial}}.unverified\"; mv -T -- \"$t\" \"$u\"; trap - EXIT TERM INT HUP; \
                 printf '%s\\n' \"$u\"; sha256sum \"$u\" | cut -d' ' -f1; stat -c %s \"$u\""
            ))
            .label(format!("tar --numeric-owner -czpf <a temporary file in {}> -- {} (named once verified)", spec.dest_dir, sources.join(" ")))
            .tracked(),
        )
        .await?;
    if !made.ok() {
        return Err(BackupError::from(format!("writing the backup in {} failed (the partial archive was removed): {}", spec.dest_dir, made.stderr_str().trim())));
    }
    let out = made.stdout_str();
    let mut lines = out.lines();
    let unverified = lines.next().unwrap_or_default().trim().to_string();
    let sha256 = lines.next().unwrap_or_default().trim().to_string();
    let bytes: u64 = lines.next().and_then(|l| l.trim().parse().ok()).unwrap_or(0);
    if fault("corrupt-backup") {
        // Fault injection for tests: damage the archive between write and verify.
        let _ = run(format!("printf 'CORRUPT!' | dd of={} bs=1 seek=200 conv=notrunc 2>/dev/null", quote::quote(&unverified))).await;
    }

    // 3. Verification.
    if let Err(e) = verify(ctx, &unverified, &sha256, entries).await {
        if e.lost {
            return Err(e);
        }
        let invalid = format!("{}/{}.{}.invalid", spec.dest_dir.trim_end_matches('/'), spec.name, unverified.rsplit('.').nth(1).unwrap_or("x"));
        let _ = run(format!("ln -- {u} {i} && rm -f -- {u}", u = quote::quote(&unverified), i = quote::quote(&invalid))).await;
        return Err(BackupError::from(format!("{e}; the archive was renamed to {invalid}")));
    }

    // 4. The final name, reserved exclusively by its manifest (`set -C`: O_EXCL), then the
    //    manifest, then the archive linked under it (`ln` never replaces a file).
    let reserve = run(format!(
        "set -e; umask 077; d={dest}; n={name}; case \"$n\" in *.tar.gz) b=${{n%.tar.gz}}; x=.tar.gz;; *.tgz) b=${{n%.tgz}}; x=.tgz;; *) b=$n; x=;; esac; i=1; \
         while :; do if [ $i -eq 1 ]; then c=\"$d/$n\"; else c=\"$d/$b-$i$x\"; fi; \
         if [ ! -e \"$c\" ] && [ ! -L \"$c\" ] && ( set -C; : > \"$c.manifest.json\" ) 2>/dev/null; then break; fi; i=$((i+1)); [ $i -le 1000 ] || exit 17; done; printf '%s\\n' \"$c\""
    ))
    .await?;
    let archive = reserve.stdout_str().trim().to_string();
    if !reserve.ok() || archive.is_empty() {
        let _ = run(format!("rm -f -- {}", quote::quote(&unverified))).await;
        return Err(BackupError::from(format!("cannot reserve a name for the backup in {}: {}", spec.dest_dir, reserve.stderr_str().trim())));
    }
    // The id names this backup (two backups of the same bytes are still two backups).
    let created_at = chrono::Utc::now().to_rfc3339();
    let id: String = crate::digest::sha256_hex(format!("{sha256}\n{archive}\n{created_at}").as_bytes()).chars().take(12).collect();
    let record = BackupRecord {
        id,
        host: ctx.host.to_string(),
        manifest: format!("{archive}.manifest.json"),
        archive,
        sources,
        sha256,
        entries,
        bytes,
        source_bytes,
        run_id: spec.run_id.clone(),
        task: spec.task.clone(),
        created_at,
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    let mut manifest = serde_json::to_value(&record).unwrap_or(json!({}));
    manifest["ownership"] = json!("numeric uid/gid and modes recorded (tar -p --numeric-owner)");
    if spec.paths != record.sources {
        manifest["requested"] = json!(spec.paths);
    }
    let text = serde_json::to_string_pretty(&manifest).unwrap_or_default() + "\n";
    let (m, a, u) = (quote::quote(&record.manifest), quote::quote(&record.archive), quote::quote(&unverified));
    let put = ctx
        // The same inode as the archive verified above (a link, no copy): nothing wrote it since.
        .run(Cmd::shell(format!("set -e; umask 077; test ! -s {m}; cat >> {m}; ln -- {u} {a}; test \"$(stat -c %i:%s -- {a})\" = \"$(stat -c %i:%s -- {u})\"; rm -f -- {u}")).stdin(text.into_bytes()))
        .await?;
    if !put.ok() {
        let _ = run(format!("rm -f -- {u}")).await;
        return Err(BackupError::from(format!("cannot put the backup at {} with its manifest: {}", record.archive, put.stderr_str().trim())));
    }
    Ok(record)
}

/// Reads the archive end to end and checks its entry count and sha256.
pub async fn verify(ctx: &Remote<'_>, archive: &str, sha256: &str, entries: u64) -> Result<(), BackupError> {
    let a = quote::quote(archive);
    let out = ctx
        // The sha256 and the listing read the archive at the same time (two cores, one pass of I/O).
        .run(Cmd::shell(format!(
            "s=$(mktemp); sha256sum {a} > \"$s\" & \
             n=$( {{ tar -tzf {a} 2>/dev/null; echo \"TAR_RC=$?\"; }} | awk '/^TAR_RC=/{{rc=substr($0,8); next}} {{n++}} END {{print n+0, rc}}'); \
             wait; echo \"COUNT $n\"; cut -d' ' -f1 \"$s\"; rm -f \"$s\""
        )))
        .await?;
    let text = out.stdout_str();
    let count_line = text.lines().find_map(|l| l.strip_prefix("COUNT ")).unwrap_or("0 1");
    let mut parts = count_line.split_whitespace();
    let n: u64 = parts.next().and_then(|x| x.parse().ok()).unwrap_or(0);
    let rc: i32 = parts.next().and_then(|x| x.parse().ok()).unwrap_or(1);
    let actual = text.lines().last().unwrap_or_default().trim().to_string();
    if rc != 0 {
        return Err(BackupError::from(format!("backup {archive} is unreadable (tar exit {rc} while reading it end to end)")));
    }
    if n != entries {
        return Err(BackupError::from(format!("backup {archive} holds {n} entries, the source has {entries}")));
    }
    if actual != sha256 {
        return Err(BackupError::from(format!("backup {archive} sha256 is {actual}, expected {sha256}")));
    }
    Ok(())
}

pub use crate::digest::human_bytes as human;


/// `--backup-copy DIR`: streams the archive to this machine and checks it here:
/// sha256 (`sha2`) equal to the record's, and every entry readable and safe
/// with the count recorded (`tar` + `flate2`). Returns the local path.
pub async fn copy_home(remote: &Remote<'_>, record: &BackupRecord, dir: &std::path::Path, progress: &(dyn Fn(u64) + Sync)) -> Result<std::path::PathBuf, String> {
    let folder = dir.join(remote.host);
    std::fs::create_dir_all(&folder).map_err(|e| format!("create {}: {e}", folder.display()))?;
    let name = record.archive.rsplit('/').next().unwrap_or("backup.tar.gz");
    let local = folder.join(name);
    let (sha, _) = remote.conn.copy_to_local(&record.archive, &local, remote.user.as_deref(), progress).await?;
    if sha != record.sha256 {
        return Err(format!("the copy at {} has sha256 {sha}, the backup {}", local.display(), record.sha256));
    }
    let file = std::fs::File::open(&local).map_err(|e| e.to_string())?;
    let entries = crate::safety::archive::check_entries(std::io::BufReader::new(file), &record.sources)?;
    if entries != record.entries {
        return Err(format!("the copy at {} holds {entries} entries, the backup {}", local.display(), record.entries));
    }
    let manifest = serde_json::to_string_pretty(record).unwrap_or_default();
    std::fs::write(folder.join(format!("{name}.manifest.json")), manifest).map_err(|e| e.to_string())?;
    Ok(local)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coverage_is_by_path_prefix() {
        let r = BackupRecord {
            id: "x".into(), host: "h".into(), archive: "a".into(), manifest: "m".into(),
            sources: vec!["/var/lib/postgresql/14/main".into()], sha256: "s".into(), entries: 1, bytes: 1, source_bytes: 1,
            run_id: "r".into(), task: "t".into(), created_at: "c".into(), tool_version: "v".into(),
        };
        assert!(r.covers("/var/lib/postgresql/14/main"));
        assert!(r.covers("/var/lib/postgresql/14/main/global/pg_control"));
        assert!(!r.covers("/var/lib/postgresql/14/main2"));
        assert!(!r.covers("/var/lib/postgresql/14"));
    }

    #[test]
    fn names_are_slugs() {
        assert_eq!(slug("14-main before pg_resetwal!"), "14-main-before-pg_resetwal");
        let (a, b) = (archive_name("nginx site", "run1"), archive_name("nginx site", "run1"));
        assert!(a.starts_with("nginx-site-") && a.ends_with(".tar.gz") && a.contains("-run1-"), "{a}");
        assert_ne!(a, b, "two names in one second differ");
    }
}
