//! Ansible-compatible inventory: YAML and INI sources, `group_vars/` and
//! `host_vars/` beside them, host ranges, patterns, and Ansible's variable
//! precedence (all < parent group < child group < host; groups of one depth by
//! name). `recover inventory --list` prints what `ansible-inventory --list`
//! prints for the same files.

pub mod ini;
pub mod pattern;
mod pyliteral;
pub mod range;
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
}

impl Inventory {
    fn empty() -> Inventory {
        let mut inv = Inventory::default();
        inv.group("all");
        inv.group("ungrouped");
        inv.add_child("all", "ungrouped");
        inv
    }

    /// Reads an inventory file or a folder of them, with `group_vars/` and `host_vars/`.
    pub fn load(path: &Path) -> SResult<Inventory> {
        let mut inv = Inventory::empty();
        let meta = std::fs::metadata(path).map_err(|e| SourceError::new(Span::file(path), format!("cannot read inventory: {e}")))?;
        let dir = if meta.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| SourceError::new(Span::file(path), format!("cannot read inventory folder: {e}")))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && is_inventory_file(p))
                .collect();
            files.sort();
            for f in files {
                inv.load_source(&f)?;
            }
            path.to_path_buf()
        } else {
            inv.load_source(path)?;
            path.parent().map(Path::to_path_buf).unwrap_or_default()
        };
        inv.sources.push(path.to_path_buf());
        inv.reconcile();
        inv.load_vars_dirs(&dir)?;
        Ok(inv)
    }

    fn load_source(&mut self, path: &Path) -> SResult<()> {
        let bytes = crate::vault::read_file(path).map_err(|e| SourceError::new(Span::file(path), format!("cannot read inventory: {e}")))?;
        let text = String::from_utf8(bytes).map_err(|_| SourceError::new(Span::file(path), "the inventory is not UTF-8 text"))?;
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if matches!(ext, "yml" | "yaml" | "json") || (ext.is_empty() && looks_like_yaml(&text)) {
            yamlsrc::parse(self, &text, path)
        } else {
            ini::parse(self, &text, path)
        }
    }

    /// The group named `name`, created if new.
    pub(crate) fn group(&mut self, name: &str) -> &mut Group {
        self.groups.entry(name.to_string()).or_insert_with(|| Group { name: name.to_string(), ..Default::default() })
    }

    pub(crate) fn add_host(&mut self, group: &str, host: &str, vars: Vars) {
        let entry = self.hosts.entry(host.to_string()).or_default();
        for (k, v) in vars {
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
            let in_group = self.groups.values().any(|g| g.name != "all" && g.hosts.contains(&h));
            if !in_group {
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

    /// `group_vars/NAME(.yml|.yaml|.json|/)` and `host_vars/...` beside the inventory.
    fn load_vars_dirs(&mut self, dir: &Path) -> SResult<()> {
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

    /// Every host of a group and of its descendants, in inventory order.
    pub fn group_hosts(&self, group: &str) -> Vec<String> {
        if group == "all" {
            return self.hosts.keys().cloned().collect();
        }
        let mut found = Vec::new();
        let mut stack = vec![group.to_string()];
        let mut seen = Vec::new();
        while let Some(g) = stack.pop() {
            if seen.contains(&g) {
                continue;
            }
            seen.push(g.clone());
            if let Some(grp) = self.groups.get(&g) {
                found.extend(grp.hosts.iter().cloned());
                stack.extend(grp.children.iter().cloned());
            }
        }
        self.hosts.keys().filter(|h| found.contains(h)).cloned().collect()
    }

    /// Groups a host is in, directly or through a child group, with their depth below `all`.
    fn host_groups(&self, host: &str) -> Vec<(usize, String)> {
        let mut out: Vec<(usize, String)> = Vec::new();
        let direct: Vec<&Group> = self.groups.values().filter(|g| g.hosts.iter().any(|h| h == host)).collect();
        let mut stack: Vec<String> = direct.iter().map(|g| g.name.clone()).collect();
        stack.push("all".into());
        while let Some(g) = stack.pop() {
            if out.iter().any(|(_, n)| *n == g) {
                continue;
            }
            out.push((self.depth(&g), g.clone()));
            if let Some(grp) = self.groups.get(&g) {
                stack.extend(grp.parents.iter().cloned());
            }
        }
        out
    }

    fn depth(&self, group: &str) -> usize {
        let mut best = 0;
        let mut frontier = vec![(group.to_string(), 0usize)];
        let mut steps = 0;
        while let Some((g, d)) = frontier.pop() {
            steps += 1;
            if steps > 10_000 {
                break;
            }
            best = best.max(d);
            if let Some(grp) = self.groups.get(&g) {
                for p in &grp.parents {
                    frontier.push((p.clone(), d + 1));
                }
            }
        }
        best
    }

    /// `group_names`: the host's groups, sorted, without `all` and `ungrouped`.
    pub fn group_names(&self, host: &str) -> Vec<String> {
        let mut names: Vec<String> = self.host_groups(host).into_iter().map(|(_, n)| n).filter(|n| n != "all" && n != "ungrouped").collect();
        names.sort();
        names
    }

    /// The host's inventory variables after Ansible's precedence: groups by
    /// depth then name (so `all` first, children over parents), then the host's own.
    pub fn host_vars(&self, host: &str) -> Vars {
        // As Ansible sorts them: by depth, then `ansible_group_priority` (default 1), then name.
        // The priority is consumed, not a variable.
        let priority = |g: &str| -> i64 {
            self.groups.get(g).and_then(|grp| grp.vars.get("ansible_group_priority")).and_then(|v| v.as_i64().or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))).unwrap_or(1)
        };
        let mut groups: Vec<(usize, i64, String)> = self.host_groups(host).into_iter().map(|(d, g)| (d, priority(&g), g)).collect();
        groups.sort();
        let mut vars = Vars::new();
        for (_, _, g) in groups {
            if let Some(grp) = self.groups.get(&g) {
                for (k, v) in &grp.vars {
                    if k != "ansible_group_priority" {
                        vars.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        if let Some(hv) = self.hosts.get(host) {
            for (k, v) in hv {
                vars.insert(k.clone(), v.clone());
            }
        }
        vars
    }

    /// `ansible-inventory --list` as data.
    pub fn to_list_json(&self, hosts: &[String]) -> Json {
        let mut out = serde_json::Map::new();
        let mut seen = Vec::new();
        self.format_group("all", hosts, &mut out, &mut seen);
        let mut hostvars = serde_json::Map::new();
        for h in hosts {
            let vars = self.host_vars(h);
            if !vars.is_empty() {
                hostvars.insert(h.clone(), Json::Object(vars.into_iter().collect()));
            }
        }
        // ansible-core 2.19 names the format of _meta.
        out.insert("_meta".into(), serde_json::json!({ "hostvars": hostvars, "profile": "inventory_legacy" }));
        Json::Object(out)
    }

    fn format_group(&self, name: &str, hosts: &[String], out: &mut serde_json::Map<String, Json>, seen: &mut Vec<String>) {
        let Some(g) = self.groups.get(name) else { return };
        let mut entry = serde_json::Map::new();
        if name != "all" {
            let hs: Vec<Json> = g.hosts.iter().filter(|h| hosts.contains(h)).map(|h| Json::String(h.clone())).collect();
            if !hs.is_empty() {
                entry.insert("hosts".into(), Json::Array(hs));
            }
        }
        let mut children = Vec::new();
        for c in &g.children {
            children.push(Json::String(c.clone()));
            if !seen.contains(c) {
                seen.push(c.clone());
                self.format_group(c, hosts, out, seen);
            }
        }
        if !children.is_empty() {
            entry.insert("children".into(), Json::Array(children));
        }
        if !entry.is_empty() {
            out.insert(name.to_string(), Json::Object(entry));
        }
    }

    /// `ansible-inventory --graph` text, from `group`.
    pub fn graph(&self, group: &str) -> String {
        let mut lines = Vec::new();
        self.graph_group(group, 0, &mut lines, &mut Vec::new());
        lines.join("\n") + "\n"
    }

    fn graph_group(&self, name: &str, depth: usize, lines: &mut Vec<String>, path: &mut Vec<String>) {
        let Some(g) = self.groups.get(name) else { return };
        lines.push(graph_name(&format!("@{name}:"), depth));
        if path.contains(&name.to_string()) {
            return;
        }
        path.push(name.to_string());
        // Children and hosts in the order they were defined, as ansible-inventory 2.19 prints them.
        for k in &g.children {
            self.graph_group(k, depth + 1, lines, path);
        }
        if name != "all" {
            for h in &g.hosts {
                lines.push(graph_name(h, depth + 1));
            }
        }
        path.pop();
    }
}

fn graph_name(name: &str, depth: usize) -> String {
    if depth == 0 {
        name.to_string()
    } else {
        format!("{}--{name}", "  |".repeat(depth))
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
