//! Reading a backup archive here, before it is trusted (`tar` + `flate2`): every entry must be
//! a relative path without `..`, inside the paths the backup was taken of, and no symlink or
//! hard link may point outside them; every entry is read through, so a truncated or corrupt
//! archive is caught. Used by a restore before it extracts anything, and by `--backup-copy`.

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

