//! Ansible-compatible inventory: YAML and INI sources, `group_vars/` and
//! `host_vars/` beside them, host ranges, patterns, and Ansible's variable
//! precedence (all < parent group < child group < host; groups of one depth by
//! name). `recover inventory --list` prints what `ansible-inventory --list`
//! prints for the same files.

pub mod ini;
pub use crate::hostpattern as pattern;

mod constructed;
mod pyliteral;
mod query;
mod show;
pub mod range;
mod tomlsrc;
mod yamlsrc;

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde_json::Value as Json;

use crate::error::{SResult, SourceError, Span};
use crate::template::Vars;

/// A group: its direct hosts, its child groups, and its own variables.
#[derive(Clone, Debug, Default)]
pub struct Group {
    pub name: String,
    pub hosts: Vec<String>,
    pub children: Vec<String>,
    pub parents: Vec<String>,
    pub vars: Vars,
}

/// A parsed inventory.
#[derive(Clone, Debug, Default)]
pub struct Inventory {
    /// Hosts in order of first appearance, with their own variables.
    pub hosts: IndexMap<String, Vars>,
    /// Groups in order of first appearance; `all` and `ungrouped` always exist.
    pub groups: IndexMap<String, Group>,
    /// The files or folders it was read from.
    pub sources: Vec<PathBuf>,
    /// For a host's own list or mapping values: which assignment made them. Ansible gives every
    /// host of one line or pattern the same object, and `--list --yaml` writes a shared object
    /// once with an anchor (`&id001`) and then as an alias (`*id001`).
    own_origin: std::collections::HashMap<(String, String), u64>,
    batch: u64,
    /// Whether strings set by later sources are trusted as templates. ansible-core 2.19 decides
    /// it once per run, at the first source that sets a variable: a YAML or INI source (which
    /// marks its own strings) makes every later TOML or constructed string untrusted data, a
    /// TOML source first makes them trusted.
    first_trust: Option<bool>,
}

/// Where a host's variable value came from: a group's variable, or one host assignment.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Origin {
    Group(String),
    Assignment(u64),
    Unique,
}

impl Inventory {
    fn empty() -> Inventory {
        let mut inv = Inventory::default();
        inv.group("all");
        inv.group("ungrouped");
        inv.add_child("all", "ungrouped");
        inv
    }

    /// The groups and hosts of a play's `groups` variable (group -> its hosts), for patterns
    /// over it, as the `inventory_hostnames` lookup builds them: every group flat, `all` holding
    /// its hosts itself, in the variable's order.
    pub fn from_groups(groups: &[(String, Vec<String>)]) -> Inventory {
        let mut inv = Inventory::empty();
        for (g, hosts) in groups {
            inv.group(g);
            for h in hosts {
                inv.add_host(g, h, Vars::new());
            }
        }
        inv
    }

    /// Reads an inventory file or a folder of them, with `group_vars/` and `host_vars/`.
    pub fn load(path: &Path) -> SResult<Inventory> {
        Inventory::load_all(&[path.to_path_buf()])
    }

    /// Reads every source in order, as `ansible -i A -i B` does: a file, a folder of files (read
    /// in name order), or a host list (`web1,web2:2222,` when no such file exists). Each
    /// source's `group_vars/` and `host_vars/` apply.
    pub fn load_all(paths: &[PathBuf]) -> SResult<Inventory> {
        let mut inv = Inventory::empty();
        let mut dirs = Vec::new();
        for path in paths {
            if !path.exists() && path.to_string_lossy().contains(',') {
                inv.load_host_list(&path.to_string_lossy())?;
                inv.sources.push(path.clone());
                continue;
            }
            let meta = std::fs::metadata(path).map_err(|e| SourceError::new(Span::file(path), format!("cannot read inventory: {e}")))?;
            if meta.is_dir() {
                crate::inputs::note(path);
                let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                    .map_err(|e| SourceError::new(Span::file(path), format!("cannot read inventory folder: {e}")))?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.is_file() && is_inventory_file(p))
                    .collect();
                files.sort();
                for f in files {
                    inv.load_source(&f)?;
                }
                dirs.push(path.to_path_buf());
            } else {
                inv.load_source(path)?;
                dirs.push(path.parent().map(Path::to_path_buf).unwrap_or_default());
            }
            inv.sources.push(path.to_path_buf());
        }
        inv.reconcile();
        for dir in dirs {
            inv.load_vars_dirs(&dir)?;
        }
        Ok(inv)
    }

    /// ansible-core's `host_list` source: hosts separated by commas.
    fn load_host_list(&mut self, list: &str) -> SResult<()> {
        for item in list.split(',').map(str::trim).filter(|h| !h.is_empty()) {
            let (name, port) = yamlsrc::split_port(item);
            if name.is_empty() || name.contains(char::is_whitespace) {
                return Err(SourceError::new(Span::default(), format!("-i {list}: {item:?} is not a host name")));
            }
            let mut vars = Vars::new();
            if let Some(p) = port {
                vars.insert("ansible_port".into(), Json::from(p));
            }
            self.add_host("ungrouped", name, vars);
        }
        Ok(())
    }

    fn load_source(&mut self, path: &Path) -> SResult<()> {
        let bytes = crate::vault::read_file(path).map_err(|e| SourceError::new(Span::file(path), format!("cannot read inventory: {e}")))?;
        let text = String::from_utf8(bytes).map_err(|_| SourceError::new(Span::file(path), "the inventory is not UTF-8 text"))?;
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if ext == "toml" {
            tomlsrc::parse(self, &text, path)
        } else if matches!(ext, "yml" | "yaml" | "json" | "config") || (ext.is_empty() && looks_like_yaml(&text)) {
            if let Some(plugin) = constructed::plugin_of(&text, path)? {
                return constructed::run(self, &plugin);
            }
            yamlsrc::parse(self, &text, path)
        } else {
            ini::parse(self, &text, path)
        }
    }

    /// The group named `name`, created if new.
    pub(crate) fn group(&mut self, name: &str) -> &mut Group {
        self.groups.entry(name.to_string()).or_insert_with(|| Group { name: name.to_string(), ..Default::default() })
    }

    /// A source of this kind sets a variable: see `first_trust`. Returns whether strings it sets
    /// are untrusted data.
    pub(crate) fn sets_variable(&mut self, trusted_by_default: bool) -> bool {
        !*self.first_trust.get_or_insert(trusted_by_default)
    }

    /// Adds the hosts of one line or pattern, all with the same variables.
    pub(crate) fn add_hosts(&mut self, group: &str, hosts: &[String], vars: Vars) {
        if !vars.is_empty() {
            self.sets_variable(false);
        }
        for h in hosts {
            self.add_host(group, h, vars.clone());
        }
        self.batch += 1;
    }

    pub(crate) fn add_host(&mut self, group: &str, host: &str, vars: Vars) {
        let entry = self.hosts.entry(host.to_string()).or_default();
        for (k, v) in vars {
            if (v.is_array() || v.is_object()) && crate::template::as_unsafe(&v).is_none() && crate::template::as_vault(&v).is_none() {
                self.own_origin.insert((host.to_string(), k.clone()), self.batch);
            } else {
                self.own_origin.remove(&(host.to_string(), k.clone()));
            }
            entry.insert(k, v);
        }
        let g = self.group(group);
        if !g.hosts.iter().any(|h| h == host) {
            g.hosts.push(host.to_string());
        }
    }

    pub(crate) fn add_child(&mut self, parent: &str, child: &str) {
        self.group(child);
        let p = self.group(parent);
        if !p.children.iter().any(|c| c == child) {
            p.children.push(child.to_string());
        }
        let c = self.group(child);
        if !c.parents.iter().any(|x| x == parent) {
            c.parents.push(parent.to_string());
        }
    }

    /// `add_host`: the host (in `all` when new) with `vars` over its own, in each of `groups`
    /// (made when new), as ansible-core's `add_dynamic_host`; true when the inventory changed.
    pub fn add_dynamic_host(&mut self, name: &str, groups: &[String], vars: Vars) -> bool {
        let mut changed = false;
        if !self.hosts.contains_key(name) {
            self.add_host("all", name, Vars::new());
            changed = true;
        }
        let own = self.hosts.get(name).cloned().unwrap_or_default();
        let mut combined = own.clone();
        combined.extend(vars);
        if combined != own {
            self.hosts.insert(name.to_string(), combined);
            changed = true;
        }
        for g in groups {
            if !self.groups.contains_key(g) {
                self.group(g);
                changed = true;
            }
            let grp = self.group(g);
            if !grp.hosts.iter().any(|h| h == name) {
                grp.hosts.push(name.to_string());
                changed = true;
            }
        }
        if changed {
            self.reconcile();
        }
        changed
    }

    /// `group_by`: `host` in `group`, made a child of each of `parents` (made when new), as
    /// ansible-core's `add_dynamic_group`; true when the inventory changed.
    pub fn add_dynamic_group(&mut self, host: &str, group: &str, parents: &[String]) -> bool {
        let mut changed = false;
        self.group(group);
        for p in parents {
            if !self.groups.contains_key(p) {
                self.group(p);
                changed = true;
            }
        }
        for p in parents {
            if !self.groups[p].children.iter().any(|c| c == group) {
                self.add_child(p, group);
                changed = true;
            }
        }
        let grp = self.group(group);
        if !grp.hosts.iter().any(|h| h == host) {
            grp.hosts.push(host.to_string());
            changed = true;
        }
        // A new group with no parent yet becomes a child of `all`.
        self.reconcile();
        changed
    }

    /// As Ansible's `reconcile_inventory`: top-level groups become children
    /// of `all`; hosts in no group but `all` go to `ungrouped`.
    fn reconcile(&mut self) {
        let names: Vec<String> = self.groups.keys().cloned().collect();
        for g in &names {
            if g != "all" && self.groups[g].parents.is_empty() {
                self.add_child("all", g);
            }
        }
        let all_direct = self.groups["all"].hosts.clone();
        let hosts: Vec<String> = self.hosts.keys().cloned().collect();
        for h in hosts {
            let in_group = self.groups.values().any(|g| g.name != "all" && g.name != "ungrouped" && g.hosts.contains(&h));
            if in_group {
                // A later source (or the constructed plugin) put it in a group.
                if let Some(u) = self.groups.get_mut("ungrouped") {
                    u.hosts.retain(|x| *x != h);
                }
            } else {
                let u = self.group("ungrouped");
                if !u.hosts.contains(&h) {
                    u.hosts.push(h.clone());
                }
            }
        }
        if let Some(all) = self.groups.get_mut("all") {
            all.hosts = all_direct;
        }
    }

    /// `group_vars/NAME(.yml|.yaml|.json|/)` and `host_vars/...` in `dir` (beside the inventory,
    /// and beside the playbook, whose files win, as in Ansible).
    pub fn load_vars_dirs(&mut self, dir: &Path) -> SResult<()> {
        let groups: Vec<String> = self.groups.keys().cloned().collect();
        for g in groups {
            if let Some(vars) = load_vars_for(&dir.join("group_vars"), &g)? {
                let group = self.group(&g);
                for (k, v) in vars {
                    group.vars.insert(k, v);
                }
            }
        }
        let hosts: Vec<String> = self.hosts.keys().cloned().collect();
        for h in hosts {
            if let Some(vars) = load_vars_for(&dir.join("host_vars"), &h)? {
                if let Some(hv) = self.hosts.get_mut(&h) {
                    for (k, v) in vars {
                        hv.insert(k, v);
                    }
                }
            }
        }
        Ok(())
    }

}

fn is_inventory_file(p: &Path) -> bool {
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
    !(name.starts_with('.')
        || name.ends_with('~')
        || [".orig", ".bak", ".cfg", ".retry", ".pyc", ".pyo", ".md", ".txt", ".j2"].iter().any(|e| name.ends_with(e)))
}

fn looks_like_yaml(text: &str) -> bool {
    text.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';')).is_some_and(|l| !l.starts_with('[') && l.ends_with(':') || l == "---")
}

/// Variables for `name` under a `group_vars` or `host_vars` folder: a file
/// (`name`, `name.yml`, `name.yaml`, `name.json`) and/or a folder of such files.
fn load_vars_for(dir: &Path, name: &str) -> SResult<Option<Vars>> {
    let mut files = Vec::new();
    for ext in ["", ".yml", ".yaml", ".json"] {
        let p = dir.join(format!("{name}{ext}"));
        // Looked for: a saved plan notices the file when it appears later (or the folder's
        // files, `name` being a folder).
        crate::inputs::note(&p);
        if p.is_file() {
            files.push(p);
        }
    }
    let sub = dir.join(name);
    if sub.is_dir() {
        let mut inner: Vec<PathBuf> = std::fs::read_dir(&sub)
            .map_err(|e| SourceError::new(Span::file(&sub), format!("cannot read folder: {e}")))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && is_inventory_file(p))
            .collect();
        inner.sort();
        files.extend(inner);
    }
    if files.is_empty() {
        return Ok(None);
    }
    let mut vars = Vars::new();
    for f in files {
        let node = crate::yaml::load_file(&f)?;
        match node.to_json() {
            Json::Object(m) => vars.extend(m),
            Json::Null => {}
            _ => return Err(node.error(format!("variables file must hold a mapping, found {}", node.kind()))),
        }
    }
    Ok(Some(vars))
}

#[cfg(test)]
mod tests;

impl crate::hostpattern::HostSet for Inventory {
    fn group_hosts(&self, group: &str) -> Vec<String> {
        Inventory::group_hosts(self, group)
    }
    fn group_named(&self, name: &str) -> Option<String> {
        self.groups.get(name).map(|g| g.name.clone())
    }
    fn has_host(&self, name: &str) -> bool {
        self.hosts.contains_key(name)
    }
    fn group_names(&self) -> Vec<String> {
        self.groups.keys().cloned().collect()
    }
    fn host_names(&self) -> Vec<String> {
        self.hosts.keys().cloned().collect()
    }
}
