//! Restoring a backup safely. The archive is fetched and read here first
//! (`tar` + `flate2`): every entry must be a relative path without `..`,
//! inside the paths the backup was taken of, and no symlink or hard link may
//! point outside them. Only then is it extracted on the host, after the
//! current state was itself backed up and set aside (renamed, never deleted).

use std::io::Read as _;
use std::path::{Component, Path, PathBuf};

use sha2::Digest;

/// What the check found in an archive.
#[derive(Debug, PartialEq)]
pub struct Checked {
    pub entries: u64,
    pub sha256: String,
}

/// Checks an archive's bytes against the backup's `sources` (absolute paths).
pub fn check_archive(bytes: &[u8], sources: &[String]) -> Result<Checked, String> {
    let sha256 = format!("{:x}", sha2::Sha256::digest(bytes));
    let entries = check_entries(bytes, sources)?;
    Ok(Checked { entries, sha256 })
}

/// The same check reading an archive as it streams (a local copy); returns the entry count.
pub fn check_entries<R: std::io::Read>(reader: R, sources: &[String]) -> Result<u64, String> {
    let roots: Vec<PathBuf> = sources.iter().map(|s| PathBuf::from(s.trim_start_matches('/'))).collect();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(reader));
    let mut entries = 0u64;
    for entry in archive.entries().map_err(|e| format!("unreadable archive: {e}"))? {
        let mut entry = entry.map_err(|e| format!("unreadable archive entry: {e}"))?;
        let raw = entry.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&raw).into_owned();
        let path = PathBuf::from(&name);
        let rel = normalize(&path).ok_or_else(|| format!("refused: entry {name:?} is absolute or climbs out with '..'"))?;
        if !within(&rel, &roots) {
            return Err(format!("refused: entry {name:?} lies outside the backed-up paths"));
        }
        let kind = entry.header().entry_type();
        if kind.is_symlink() || kind.is_hard_link() {
            let target = entry.link_name().map_err(|e| format!("bad link in {name:?}: {e}"))?.map(|t| t.into_owned()).unwrap_or_default();
            let resolved = if target.is_absolute() {
                normalize_abs(&target)
            } else if kind.is_hard_link() {
                normalize(&target)
            } else {
                normalize(&rel.parent().unwrap_or(Path::new("")).join(&target))
            };
            match resolved {
                Some(t) if within(&t, &roots) => {}
                _ => return Err(format!("refused: link {name:?} points outside the backed-up paths ({})", target.display())),
            }
        }
        // Read the entry through, so a truncated or corrupt archive is caught here.
        std::io::copy(&mut entry.by_ref(), &mut std::io::sink()).map_err(|e| format!("unreadable data in {name:?}: {e}"))?;
        entries += 1;
    }
    Ok(entries)
}

/// A relative path without `..` or root, lexically normalized; `None` if it escapes.
fn normalize(p: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(x) => out.push(x),
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

fn normalize_abs(p: &Path) -> Option<PathBuf> {
    normalize(p.strip_prefix("/").ok()?)
}

fn within(p: &Path, roots: &[PathBuf]) -> bool {
    roots.iter().any(|r| p.starts_with(r))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        build(&mut b);
        let tar = b.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &tar).unwrap();
        gz.finish().unwrap()
    }

    fn file(b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]) {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        // Write the name raw so that hostile names ('..', absolute) reach the archive as they are.
        let name = h.as_old_mut();
        name.name[..path.len()].copy_from_slice(path.as_bytes());
        h.set_cksum();
        b.append(&h, data).unwrap();
    }

    fn link(b: &mut tar::Builder<Vec<u8>>, path: &str, target: &str) {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_mode(0o777);
        let name = h.as_old_mut();
        name.name[..path.len()].copy_from_slice(path.as_bytes());
        name.linkname[..target.len()].copy_from_slice(target.as_bytes());
        h.set_cksum();
        b.append(&h, &[][..]).unwrap();
    }

    #[test]
    fn a_clean_archive_passes() {
        let a = archive(|b| {
            file(b, "srv/data/a.txt", b"hello");
            link(b, "srv/data/l", "a.txt");
            link(b, "srv/data/abs", "/srv/data/a.txt");
        });
        let c = check_archive(&a, &["/srv/data".into()]).unwrap();
        assert_eq!(c.entries, 3);
        assert_eq!(c.sha256.len(), 64);
    }

    #[test]
    fn escapes_are_refused() {
        let roots = vec!["/srv/data".to_string()];
        let dotdot = archive(|b| file(b, "srv/data/../../etc/passwd", b"x"));
        assert!(check_archive(&dotdot, &roots).unwrap_err().contains("'..'") || check_archive(&dotdot, &roots).unwrap_err().contains("outside"));
        let absolute = archive(|b| file(b, "/etc/cron.d/x", b"x"));
        assert!(check_archive(&absolute, &roots).unwrap_err().contains("refused"));
        let elsewhere = archive(|b| file(b, "etc/shadow", b"x"));
        assert!(check_archive(&elsewhere, &roots).unwrap_err().contains("outside"));
        let escaping_link = archive(|b| link(b, "srv/data/evil", "../../etc"));
        assert!(check_archive(&escaping_link, &roots).unwrap_err().contains("points outside"));
        let abs_link = archive(|b| link(b, "srv/data/evil", "/etc/passwd"));
        assert!(check_archive(&abs_link, &roots).unwrap_err().contains("points outside"));
    }

    #[test]
    fn garbage_is_refused_not_a_panic() {
        assert!(check_archive(b"not gzip at all", &["/x".into()]).is_err());
    }
}

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
