//! What the loader asks about modules. The registry lives above the loader (`modules/`) and
//! hands itself in: the loader names no module, and the registry can grow (modules found at
//! run time) without the loader changing.

use std::path::{Path, PathBuf};

use super::Task;
use crate::error::SResult;

/// Where a task is, for finding a module as ansible-core finds it: the playbook's folder and
/// the role's (each with its `library/`), and the collections its play or role names.
#[derive(Clone, Copy, Debug)]
pub struct Scope<'a> {
    pub playbook_dir: &'a Path,
    pub role_dir: Option<&'a Path>,
    pub collections: &'a [String],
}

/// The modules a load may name.
pub trait Catalog: Send + Sync + std::fmt::Debug {
    /// The module a task key names (`ansible.builtin.copy` is `copy`): `Ok` its name as the
    /// registry knows it; `Err(Some(why))` a module name recover cannot run, and why;
    /// `Err(None)` no module at all. `scope` says where the task is, for a module found beside
    /// it (a `library/` folder, the `collections:` keyword).
    fn resolve(&self, key: &str, scope: &Scope<'_>) -> Result<String, Option<String>>;
    /// Every module name, for help and suggestions.
    fn names(&self) -> Vec<String>;
    /// Whether recover knows what the module returns (else a `register` of it may hold any
    /// name, and so may the facts it sets).
    fn knows(&self, module: &str) -> bool;
    /// The load-time check of a task's arguments against its module's.
    fn validate(&self, task: &Task) -> SResult<()>;
    /// Why a task changes or removes data, when the task itself says so.
    fn destructive(&self, task: &Task) -> Option<String>;
}

/// Where a task's `src:` file is: the role's folder (`templates/` or `files/`), the
/// playbook's, the project's, or the path as written.
pub fn find_src(src: &str, task: &Task, playbook_dir: &Path, root: &Path) -> Option<PathBuf> {
    find_src_kind(src, task, playbook_dir, root, false)
}

/// [`find_src`], a folder found too (`copy: src=conf.d/`).
pub fn find_src_kind(src: &str, task: &Task, playbook_dir: &Path, root: &Path, dirs_too: bool) -> Option<PathBuf> {
    let p = Path::new(src);
    if p.is_absolute() {
        return p.exists().then(|| p.to_path_buf());
    }
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(r) = &task.role_dir {
        dirs.extend([r.join("templates"), r.join("files"), r.clone()]);
    }
    dirs.extend([playbook_dir.join("templates"), playbook_dir.join("files"), playbook_dir.to_path_buf(), root.join("templates"), root.join("files"), root.to_path_buf()]);
    dirs.into_iter().map(|d| d.join(src)).find(|p| p.is_file() || dirs_too && p.is_dir())
}
