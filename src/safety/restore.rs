//! Restoring a backup safely. The archive is fetched and checked here first
//! ([`super::archive`]); only then is it extracted on the host, after the current state was
//! itself backed up and set aside (renamed, never deleted).

use super::archive::check_archive;
use super::backup::{self, BackupRecord, BackupSpec, Remote};
use super::confirm::Confirmer;
use super::{Decision, Tier};
use crate::transport::{quote, Cmd};

/// How a restore ended.
#[derive(Debug)]
pub enum Restored {
    /// Done: the sources hold the archive's content; the previous state is at `aside` and in `backup`.
    Done { aside: Vec<String>, backup: Option<BackupRecord>, how: String },
    /// `--dry-run`: what it would do.
    Planned(Vec<String>),
    /// Not allowed or not safe; nothing was changed.
    Refused(String),
}

/// Restores `record` on its host (see the module doc for the order of things).
pub async fn restore(remote: &Remote<'_>, record: &BackupRecord, dry_run: bool, tier: Tier, confirmer: &Confirmer, run_id: &str, backup_root: &str) -> Result<Restored, String> {
    let bytes = remote
        .conn
        .get(&record.archive, remote.user.clone())
        .await
        .map_err(|e| format!("host {}: {e}", remote.host))?
        .ok_or_else(|| format!("host {}: the archive {} is gone", remote.host, record.archive))?;
    let checked = match check_archive(&bytes, &record.sources) {
        Ok(c) => c,
        Err(e) => return Ok(Restored::Refused(format!("{}: {e}", record.archive))),
    };
    if checked.sha256 != record.sha256 {
        return Ok(Restored::Refused(format!("{}: sha256 is {}, the backup recorded {}: the archive changed since it was taken", record.archive, checked.sha256, record.sha256)));
    }
    if checked.entries != record.entries {
        return Ok(Restored::Refused(format!("{}: {} entries, the backup recorded {}", record.archive, checked.entries, record.entries)));
    }
    let mut existing = Vec::new();
    for s in &record.sources {
        if remote.run(Cmd::argv(["test", "-e", s.as_str()])).await?.ok() {
            existing.push(s.clone());
        }
    }
    // Each kept copy's name is this restore's own (run id and counter): never another's.
    let aside: Vec<String> = existing.iter().map(|s| format!("{}.{}", s.trim_end_matches('/'), backup::unique_stem("before-restore", run_id))).collect();
    let mut plan = Vec::new();
    if !existing.is_empty() {
        plan.push(format!("back up the current {} (verified)", existing.join(", ")));
    }
    for (s, a) in existing.iter().zip(&aside) {
        plan.push(format!("move {s} aside to {a} (kept, never deleted)"));
    }
    plan.push(format!("extract {} ({} entries, sha256 {}) into /", record.archive, record.entries, record.sha256));
    plan.push(format!("verify {} holds {} entries", record.sources.join(", "), record.entries));
    if dry_run {
        return Ok(Restored::Planned(plan));
    }
    let how = match confirmer.decide(remote.host, &format!("restore {}", record.id), tier, &|f: &mut dyn FnMut()| f()).await {
        Decision::Run { how } => how,
        Decision::Refused { msg } => return Ok(Restored::Refused(msg)),
        Decision::Abort => return Ok(Restored::Refused("aborted by the operator; nothing was changed".into())),
    };
    let mut current = None;
    if !existing.is_empty() {
        let first = existing[0].trim_end_matches('/').rsplit('/').next().unwrap_or("data").to_string();
        let spec = BackupSpec {
            paths: existing.clone(),
            dest_dir: backup_root.to_string(),
            name: backup::archive_name(&format!("{}-{first}-before-restore", remote.host), run_id),
            task: format!("restore {}", record.id),
            run_id: run_id.to_string(),
        };
        current = Some(backup::take(remote, &spec).await.map_err(|e| format!("backup of the current state failed, nothing was changed: {e}"))?);
    }
    for (s, a) in existing.iter().zip(&aside) {
        // Never onto something that exists (nor into a folder of that name: -T).
        let out = remote.run(Cmd::shell(format!("if [ -e {a} ] || [ -L {a} ]; then echo \"{a} exists\" >&2; exit 17; fi; mv -T -- {s} {a}", a = quote::quote(a), s = quote::quote(s)))).await?;
        if !out.ok() {
            return Err(format!("moving {s} aside failed: {}", out.stderr_str().trim()));
        }
    }
    let out = remote.run(Cmd::shell(format!("cd / && tar --numeric-owner -xzpf {}", quote::quote(&record.archive)))).await?;
    if !out.ok() {
        // Put the originals back; what was half extracted is moved aside too, not deleted.
        for (s, a) in existing.iter().zip(&aside) {
            let failed = format!("{s}.{}", backup::unique_stem("failed-restore", run_id));
            let _ = remote.run(Cmd::shell(format!("mv -T -- {} {} 2>/dev/null; mv -T -- {} {}", quote::quote(s), quote::quote(&failed), quote::quote(a), quote::quote(s)))).await;
        }
        return Err(format!("extracting {} failed, the original was put back: {}", record.archive, out.stderr_str().trim()));
    }
    let srcs = record.sources.iter().map(|s| quote::quote(s)).collect::<Vec<_>>().join(" ");
    let count = remote.run(Cmd::shell(format!("find {srcs} ! -type s | wc -l"))).await?;
    let n: u64 = count.stdout_str().trim().parse().unwrap_or(0);
    if n != record.entries {
        return Err(format!("after the restore {} holds {n} entries, the backup has {}; the previous state is kept at {}", record.sources.join(", "), record.entries, aside.join(", ")));
    }
    Ok(Restored::Done { aside, backup: current, how })
}
