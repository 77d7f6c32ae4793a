//! The inventory as `ansible-inventory` shows it: `--list` (JSON), `--graph` and `--yaml`.

use super::*;

impl Inventory {
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
