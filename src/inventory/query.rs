//! What the inventory answers: a group's hosts, a host's groups (by depth, as ansible-core
//! orders them) and its variables with where each came from.

use super::*;

impl Inventory {
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

    pub(super) fn host_vars_origin(&self, host: &str) -> IndexMap<String, (Json, Origin)> {
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
}


