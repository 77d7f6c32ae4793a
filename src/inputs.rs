//! Every local file a run reads: playbooks, imports and includes, roles, vars files, inventory
//! files and folders, group and host vars, templates, files, `ansible.cfg`, vault files; and
//! every place it looked for one that was not there (a `host_vars/NAME.yml`, a role's
//! `vars/main.yml`), so that a file added there later is noticed. A saved plan records each
//! one's digest (a folder's: its listing), so that `apply` runs on exactly the inputs the plan
//! was approved on.
//!
//! Reading is noted by the few functions every local read goes through
//! (the vault module's `read_file`, the inventory's folder listing, `ansible.cfg`).

use std::collections::{BTreeMap, BTreeSet};

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

fn noted() -> &'static Mutex<BTreeSet<PathBuf>> {
    static N: OnceLock<Mutex<BTreeSet<PathBuf>>> = OnceLock::new();
    N.get_or_init(Default::default)
}

/// Notes that `path` (a file or a folder) was read.
pub fn note(path: &Path) {
    // One name for one place, however it was reached (`-i inventory/lab.yml` or its full path):
    // a place that is not there is named by its folder's real path.
    let p = std::fs::canonicalize(path).unwrap_or_else(|_| {
        let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        match (abs.parent().and_then(|d| std::fs::canonicalize(d).ok()), abs.file_name()) {
            (Some(d), Some(n)) => d.join(n),
            _ => abs,
        }
    });
    if let Ok(mut n) = noted().lock() {
        n.insert(p);
    }
}

/// Everything noted so far, in name order.
pub fn files() -> Vec<PathBuf> {
    noted().lock().map(|n| n.iter().cloned().collect()).unwrap_or_default()
}

use crate::digest::sha256_hex;

/// A folder's listing: each entry's name and kind, in name order.
fn listing(dir: &Path) -> Option<String> {
    let rd = std::fs::read_dir(dir).ok()?;
    let mut names: Vec<String> = rd
        .flatten()
        .map(|e| {
            let kind = match e.file_type() {
                Ok(t) if t.is_dir() => "d",
                Ok(t) if t.is_symlink() => "l",
                _ => "f",
            };
            format!("{kind} {}", e.file_name().to_string_lossy())
        })
        .collect();
    names.sort();
    Some(names.join("\n"))
}

/// The digest of one input as it is now: `file:SHA256`, `dir:SHA256` (of its listing), or
/// `absent`. A key ending in `/` is a folder's listing.
pub fn digest_of(key: &str) -> String {
    if let Some(dir) = key.strip_suffix('/') {
        return match listing(Path::new(dir)) {
            Some(l) => format!("dir:{}", sha256_hex(l.as_bytes())),
            None => "absent".into(),
        };
    }
    match std::fs::read(key) {
        Ok(b) => format!("file:{}", sha256_hex(&b)),
        Err(_) if Path::new(key).is_dir() => match listing(Path::new(key)) {
            Some(l) => format!("dir:{}", sha256_hex(l.as_bytes())),
            None => "absent".into(),
        },
        Err(_) => "absent".into(),
    }
}

/// Each input noted so far (a file, a folder read whole, a place looked in), with its digest now.
pub fn digests() -> BTreeMap<String, String> {
    files()
        .into_iter()
        .map(|p| {
            let k = p.display().to_string();
            let d = digest_of(&k);
            (k, d)
        })
        .collect()
}

/// What differs between the inputs a plan recorded and the files as they are now, and the
/// inputs read now that the plan did not record; empty when they are the same.
pub fn differences(recorded: &BTreeMap<String, String>) -> Vec<String> {
    let mut out = Vec::new();
    for (k, was) in recorded {
        let now = digest_of(k);
        if &now != was {
            let what = match (k.ends_with('/'), now.as_str()) {
                (_, "absent") => "is gone".to_string(),
                (true, _) => "has other entries (a file was added, removed or renamed there)".to_string(),
                (false, _) => "changed".to_string(),
            };
            out.push(format!("{k} {what}"));
        }
    }
    for (k, _) in digests() {
        if !recorded.contains_key(&k) {
            out.push(format!("{k} is read now, and was not when the plan was made"));
        }
    }
    out
}
