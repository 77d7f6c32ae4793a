//! Where playbooks, roles, templates and baselines come from: the search path.
//!
//! 1. the project folder: the nearest folder holding `recover.yml`, from here upward (as git
//!    finds `.git`);
//! 2. `$XDG_CONFIG_HOME/recover` (else `~/.config/recover`);
//! 3. `/etc/recover`;
//! 4. the built-in set: the SOP's playbooks, roles, templates, baselines and the lab inventory,
//!    compiled into the binary and unpacked on first use into a cache folder of this user's.
//!
//! The first source that has a playbook or role of a name wins, so a local copy overrides the
//! built-in one; `recover list` says where each comes from.

use std::path::{Path, PathBuf};

use include_dir::{include_dir, Dir};

/// The built-in set, as shipped: the repository's own folders.
static PLAYBOOKS: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/playbooks");
static ROLES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/roles");
static TEMPLATES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/templates");
/// The baselines and the lab inventory (not the real fleet's inventory).
static INVENTORY: &[(&str, &[u8])] = &[
    ("baseline.yml", include_bytes!("../inventory/baseline.yml")),
    ("baseline-lab.yml", include_bytes!("../inventory/baseline-lab.yml")),
    ("lab.yml", include_bytes!("../inventory/lab.yml")),
];

fn dirs() -> [(&'static str, &'static Dir<'static>); 3] {
    [("playbooks", &PLAYBOOKS), ("roles", &ROLES), ("templates", &TEMPLATES)]
}

/// Where a source is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Project,
    User,
    System,
    Builtin,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Project => "project",
            Kind::User => "user",
            Kind::System => "system",
            Kind::Builtin => "built-in",
        }
    }
}

/// One folder of the search path.
#[derive(Clone, Debug)]
pub struct Source {
    pub kind: Kind,
    pub root: PathBuf,
}

/// The nearest folder holding `recover.yml`, from the current folder upward.
pub fn project_dir() -> Option<PathBuf> {
    let cwd = std::env::current_dir().ok()?;
    let mut dir: &Path = &cwd;
    loop {
        if dir.join("recover.yml").is_file() {
            return Some(dir.to_path_buf());
        }
        dir = dir.parent()?;
    }
}

fn user_dir() -> Option<PathBuf> {
    if let Some(x) = std::env::var_os("XDG_CONFIG_HOME").map(PathBuf::from).filter(|p| p.is_absolute()) {
        return Some(x.join("recover"));
    }
    std::env::var_os("HOME").map(PathBuf::from).filter(|p| p.is_absolute()).map(|h| h.join(".config/recover"))
}

/// The search path, in order; folders that do not exist are left out. The built-in set is
/// last (left out only if it cannot be unpacked, with a warning).
pub fn sources() -> Vec<Source> {
    let mut out = Vec::new();
    if let Some(p) = project_dir() {
        out.push(Source { kind: Kind::Project, root: p });
    }
    if let Some(u) = user_dir().filter(|d| d.is_dir()) {
        out.push(Source { kind: Kind::User, root: u });
    }
    let etc = PathBuf::from("/etc/recover");
    if etc.is_dir() {
        out.push(Source { kind: Kind::System, root: etc });
    }
    match builtin_root() {
        Ok(b) => out.push(Source { kind: Kind::Builtin, root: b }),
        Err(e) => eprintln!("warning: cannot unpack the built-in playbooks: {e}"),
    }
    out
}

/// A playbook by name (`playbooks/NAME.yml` or `.yaml`) in the first source that has it.
pub fn find_playbook(name: &str) -> Option<(PathBuf, Source)> {
    for s in sources() {
        for ext in ["yml", "yaml"] {
            let p = s.root.join("playbooks").join(format!("{name}.{ext}"));
            if p.is_file() {
                return Some((p, s));
            }
        }
    }
    None
}

/// Every playbook name with where it comes from (the first source of each name).
pub fn playbooks() -> Vec<(String, PathBuf, Source)> {
    let mut out: Vec<(String, PathBuf, Source)> = Vec::new();
    for s in sources() {
        let Ok(rd) = std::fs::read_dir(s.root.join("playbooks")) else { continue };
        let mut found: Vec<(String, PathBuf)> = rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "yml" || x == "yaml"))
            .filter_map(|p| Some((p.file_stem()?.to_str()?.to_string(), p.clone())))
            .collect();
        found.sort();
        for (name, path) in found {
            if !out.iter().any(|(n, _, _)| *n == name) {
                out.push((name, path, s.clone()));
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Folders a role of that name may be in: beside the playbook, then each source's `roles/`.
pub fn role_candidates(name: &str, playbook_dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![playbook_dir.join("roles").join(name)];
    if let Some(parent) = playbook_dir.parent() {
        out.push(parent.join("roles").join(name));
    }
    out.extend(sources().into_iter().map(|s| s.root.join("roles").join(name)));
    out
}

/// A baseline for `inventory`: `baseline-<stem>.yml` or `baseline.yml` beside it, else in the
/// `inventory/` folder of each source (so the built-in baseline serves an inventory of one's own).
pub fn find_baseline(inventory: &Path) -> Option<PathBuf> {
    let stem = inventory.file_stem().and_then(|s| s.to_str()).filter(|_| inventory.is_file()).map(str::to_string);
    let beside = if inventory.is_dir() { inventory.to_path_buf() } else { inventory.parent()?.to_path_buf() };
    let mut dirs = vec![beside];
    dirs.extend(sources().into_iter().map(|s| s.root.join("inventory")));
    for d in &dirs {
        if let Some(st) = &stem {
            let own = d.join(format!("baseline-{st}.yml"));
            if own.is_file() {
                return Some(own);
            }
        }
        let p = d.join("baseline.yml");
        if p.is_file() {
            return Some(p);
        }
    }
    None
}

/// The source folder `path` lies in (for paths relative to it, like a baseline's drift
/// templates), else the project folder, else the current folder.
pub fn root_for(path: &Path) -> PathBuf {
    let abs = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    for s in sources() {
        let r = std::fs::canonicalize(&s.root).unwrap_or(s.root.clone());
        if abs.starts_with(&r) {
            return s.root;
        }
    }
    project_dir().or_else(|| std::env::current_dir().ok()).unwrap_or_else(|| PathBuf::from("."))
}

/// A short digest of the built-in set: its cache folder's name, new for every change.
fn builtin_digest() -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    let mut stack: Vec<&Dir<'static>> = dirs().iter().map(|(_, d)| *d).collect();
    let mut files = Vec::new();
    while let Some(d) = stack.pop() {
        for e in d.entries() {
            match e {
                include_dir::DirEntry::Dir(sub) => stack.push(sub),
                include_dir::DirEntry::File(f) => files.push(f),
            }
        }
    }
    files.sort_by_key(|f| f.path());
    for f in files {
        h.update(f.path().to_string_lossy().as_bytes());
        h.update([0]);
        h.update(f.contents());
    }
    for (name, bytes) in INVENTORY {
        h.update(name.as_bytes());
        h.update(bytes);
    }
    format!("{:x}", h.finalize())[..12].to_string()
}

/// The built-in set unpacked (once per version of it) into a cache folder of this user's:
/// `$XDG_CACHE_HOME/recover`, else `~/.cache/recover`, else `/tmp/recover-<uid>` (0700, and
/// refused if another user owns it).
pub fn builtin_root() -> std::io::Result<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    static ROOT: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
    let r = ROOT.get_or_init(|| {
        let me = std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(u32::MAX);
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .map(|p| p.join("recover"))
            .or_else(|| std::env::var_os("HOME").map(PathBuf::from).filter(|h| h.is_absolute() && h.is_dir()).map(|h| h.join(".cache/recover")))
            .unwrap_or_else(|| PathBuf::from(format!("/tmp/recover-{me}")));
        let dest = cache.join(format!("builtin-{}", builtin_digest()));
        if dest.join(".complete").is_file() {
            return Ok(dest);
        }
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&cache).map_err(|e| format!("{}: {e}", cache.display()))?;
        let meta = std::fs::metadata(&cache).map_err(|e| e.to_string())?;
        if meta.uid() != me {
            return Err(format!("{} belongs to another user", cache.display()));
        }
        let tmp = cache.join(format!(".unpack-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        unpack_builtin(&tmp, true).map_err(|e| format!("{}: {e}", tmp.display()))?;
        std::fs::write(tmp.join(".complete"), b"").map_err(|e| e.to_string())?;
        if std::fs::rename(&tmp, &dest).is_err() {
            // Another process unpacked it first.
            let _ = std::fs::remove_dir_all(&tmp);
        }
        Ok(dest)
    });
    r.clone().map_err(std::io::Error::other)
}

/// Writes the built-in set under `to`: playbooks/, roles/, templates/ and, with `inventory`,
/// inventory/ (the baselines and the lab inventory). Also used by `recover init`.
pub fn unpack_builtin(to: &Path, inventory: bool) -> std::io::Result<()> {
    for (name, d) in dirs() {
        unpack(d, &to.join(name))?;
    }
    if inventory {
        std::fs::create_dir_all(to.join("inventory"))?;
        for (name, bytes) in INVENTORY {
            std::fs::write(to.join("inventory").join(name), bytes)?;
        }
    }
    Ok(())
}

/// The built-in fleet baseline (SOP tiers, phases and gates), for `recover init`.
pub fn builtin_baseline() -> &'static [u8] {
    INVENTORY[0].1
}

fn unpack(dir: &Dir<'_>, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in dir.entries() {
        match e {
            include_dir::DirEntry::Dir(sub) => unpack(sub, &to.join(sub.path().file_name().unwrap_or_default()))?,
            include_dir::DirEntry::File(f) => std::fs::write(to.join(f.path().file_name().unwrap_or_default()), f.contents())?,
        }
    }
    Ok(())
}


#[cfg(test)]
mod tests {
    #[test]
    fn the_builtin_set_holds_the_sop_playbooks_and_baselines() {
        let b = super::builtin_root().unwrap();
        for p in ["playbooks/pg-wal.yml", "roles/pg_wal/tasks/main.yml", "inventory/baseline.yml", "inventory/lab.yml", "templates/site.conf.j2"] {
            assert!(b.join(p).is_file(), "{p} is not in the built-in set");
        }
        assert!(!b.join("inventory/awoooi.yml").exists(), "the real fleet's inventory is not shipped");
    }
}
