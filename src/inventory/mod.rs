//! Ansible-compatible inventory: YAML and INI sources, `group_vars/` and
//! `host_vars/` beside them, host ranges, patterns, and Ansible's variable
//! precedence (all < parent group < child group < host; groups of one depth by
//! name). `recover inventory --list` prints what `ansible-inventory --list`
//! prints for the same files.

pub mod ini;
pub use crate::hostpattern as pattern;
mod constructed;
mod pyliteral;
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

    /// Every host of a group and of its descendants, in the order ansible-core's
    /// `Group.get_hosts` gives them (the `groups` variable, and a play's hosts): the group's own
    /// hosts, then its children's in their order, then each deeper level's.
    pub fn group_hosts(&self, group: &str) -> Vec<String> {
        let Some(g) = self.groups.get(group) else { return Vec::new() };
        let mut ordered: Vec<&str> = vec![group];
        ordered.extend(g.children.iter().map(String::as_str));
        let mut seen: Vec<&str> = ordered.clone();
        let mut level: Vec<&str> = g.children.iter().map(String::as_str).collect();
        while !level.is_empty() {
            let mut next: Vec<&str> = Vec::new();
            for parent in &level {
                for c in self.groups.get(*parent).map(|p| p.children.as_slice()).unwrap_or_default() {
                    if !seen.contains(&c.as_str()) {
                        ordered.push(c);
                        if !next.contains(&c.as_str()) {
                            next.push(c);
                        }
                    }
                }
            }
            seen.extend(next.iter().copied());
            level = next;
        }
        let mut hosts: Vec<String> = Vec::new();
        for kid in ordered {
            for h in self.groups.get(kid).map(|k| k.hosts.as_slice()).unwrap_or_default() {
                if !hosts.contains(h) {
                    hosts.push(h.clone());
                }
            }
        }
        hosts
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
        let mut names: Vec<String> = self.host_groups(host).into_iter().map(|(_, n)| n).filter(|n| n != "all").collect();
        names.sort();
        names
    }

    /// The host's inventory variables after Ansible's precedence: groups by
    /// depth then name (so `all` first, children over parents), then the host's own.
    pub fn host_vars(&self, host: &str) -> Vars {
        self.host_vars_origin(host).into_iter().map(|(k, (v, _))| (k, v)).collect()
    }

    fn host_vars_origin(&self, host: &str) -> IndexMap<String, (Json, Origin)> {
        // As Ansible sorts them: by depth, then `ansible_group_priority` (default 1), then name.
        // The priority is consumed, not a variable.
        let priority = |g: &str| -> i64 {
            self.groups.get(g).and_then(|grp| grp.vars.get("ansible_group_priority")).and_then(|v| v.as_i64().or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))).unwrap_or(1)
        };
        let mut groups: Vec<(usize, i64, String)> = self.host_groups(host).into_iter().map(|(d, g)| (d, priority(&g), g)).collect();
        groups.sort();
        let mut vars = IndexMap::new();
        for (_, _, g) in groups {
            if let Some(grp) = self.groups.get(&g) {
                for (k, v) in &grp.vars {
                    if k != "ansible_group_priority" {
                        vars.insert(k.clone(), (v.clone(), Origin::Group(g.clone())));
                    }
                }
            }
        }
        if let Some(hv) = self.hosts.get(host) {
            for (k, v) in hv {
                let origin = self.own_origin.get(&(host.to_string(), k.clone())).map_or(Origin::Unique, |b| Origin::Assignment(*b));
                vars.insert(k.clone(), (v.clone(), origin));
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

    /// `ansible-inventory --graph` text, from `group`; `vars` adds `--vars`.
    pub fn graph(&self, group: &str, vars: bool) -> String {
        let mut lines = Vec::new();
        self.graph_group(group, 0, &mut lines, &mut Vec::new(), vars);
        lines.join("\n") + "\n"
    }

    fn graph_group(&self, name: &str, depth: usize, lines: &mut Vec<String>, path: &mut Vec<String>, vars: bool) {
        let Some(g) = self.groups.get(name) else { return };
        lines.push(graph_name(&format!("@{name}:"), depth));
        if path.contains(&name.to_string()) {
            return;
        }
        path.push(name.to_string());
        // Children and hosts in the order they were defined, as ansible-inventory 2.19 prints them.
        for k in &g.children {
            self.graph_group(k, depth + 1, lines, path, vars);
        }
        if name != "all" {
            for h in &g.hosts {
                lines.push(graph_name(h, depth + 1));
                if vars {
                    graph_vars(&self.host_vars(h), depth + 2, lines);
                }
            }
        }
        if vars {
            graph_vars(&g.vars, depth + 1, lines);
        }
        path.pop();
    }

    /// `ansible-inventory --list --yaml` as data: groups nested under their parents, each host's
    /// variables written once, where the walk first meets it.
    pub fn to_yaml_tree(&self, hosts: &[String]) -> Json {
        let mut seen_hosts = Vec::new();
        let mut seen_groups = Vec::new();
        let mut out = serde_json::Map::new();
        if let Some(v) = self.yaml_group("all", hosts, &mut seen_hosts, &mut seen_groups) {
            out.insert("all".into(), v);
        }
        Json::Object(out)
    }

    fn yaml_group(&self, name: &str, hosts: &[String], seen_hosts: &mut Vec<String>, seen_groups: &mut Vec<String>) -> Option<Json> {
        let g = self.groups.get(name)?;
        let mut entry = serde_json::Map::new();
        let mut children = serde_json::Map::new();
        for c in &g.children {
            if c == "all" {
                continue;
            }
            if seen_groups.contains(c) {
                children.insert(c.clone(), Json::Object(Default::default()));
            } else {
                seen_groups.push(c.clone());
                if let Some(v) = self.yaml_group(c, hosts, seen_hosts, seen_groups) {
                    children.insert(c.clone(), v);
                }
            }
        }
        if !children.is_empty() {
            entry.insert("children".into(), Json::Object(children));
        }
        let mut hs = serde_json::Map::new();
        if name != "all" {
            for h in g.hosts.iter().filter(|h| hosts.contains(h)) {
                let mut vars = serde_json::Map::new();
                if !seen_hosts.contains(h) {
                    seen_hosts.push(h.clone());
                    for (k, (v, origin)) in self.host_vars_origin(h) {
                        let v = match origin {
                            Origin::Unique => v,
                            _ if !(v.is_array() || v.is_object()) || crate::template::as_unsafe(&v).is_some() || crate::template::as_vault(&v).is_some() => v,
                            shared => {
                                let mut hasher = std::hash::DefaultHasher::new();
                                std::hash::Hash::hash(&(&shared, &k), &mut hasher);
                                crate::template::yamlout::shared(std::hash::Hasher::finish(&hasher), v)
                            }
                        };
                        vars.insert(k, v);
                    }
                }
                hs.insert(h.clone(), Json::Object(vars));
            }
        }
        if !hs.is_empty() {
            entry.insert("hosts".into(), Json::Object(hs));
        }
        (!entry.is_empty()).then_some(Json::Object(entry))
    }
}

/// `{name = value}` lines, sorted, the value as Python's `str()` prints it.
fn graph_vars(vars: &Vars, depth: usize, lines: &mut Vec<String>) {
    let mut names: Vec<&String> = vars.keys().collect();
    names.sort();
    for k in names {
        let text = py_str(&vars[k]);
        lines.push(graph_name(&format!("{{{k} = {text}}}"), depth));
    }
}

/// Python's `str()` of a variable's value (`None`, `True`, `['a', 1]`), data marks dropped.
pub(crate) fn py_str(v: &Json) -> String {
    match crate::template::strip_unsafe(v).as_ref() {
        Json::Null => "None".into(),
        v => crate::template::pyrepr::py_str(&crate::template::to_value(v)),
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
