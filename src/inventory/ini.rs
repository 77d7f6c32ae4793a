//! The INI inventory format: `[group]`, `[group:vars]`, `[group:children]`,
//! host lines with `key=value` variables (read as Python literals, as Ansible
//! does), `:vars` values as strings.

use std::path::Path;
use std::sync::Arc;

use serde_json::Value as Json;

use super::{range, yamlsrc::split_port, Inventory};
use crate::error::{SResult, SourceError, Span};
use crate::template::Vars;

enum Section {
    Hosts(String),
    Vars(String),
    Children(String),
}

pub fn parse(inv: &mut Inventory, text: &str, path: &Path) -> SResult<()> {
    let file = Arc::new(path.to_path_buf());
    let mut section = Section::Hosts("ungrouped".into());
    // As Ansible's INI plugin: `[g]` and `[g:children]` declare a group; `[g:vars]`, and a child
    // named before its own section, wait for a declaration, and are an error without one.
    let mut pending: indexmap::IndexMap<String, (Span, bool, Vec<String>)> = indexmap::IndexMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let span = Span::new(&file, i + 1, raw.len() - raw.trim_start().len() + 1);
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(inner) = line.strip_prefix('[') {
            let inner = inner.split_once(']').map(|(a, _)| a).ok_or_else(|| SourceError::new(span.clone(), "section header without ']'"))?;
            let (name, kind) = inner.split_once(':').unwrap_or((inner, ""));
            if name.is_empty() || name.contains(' ') {
                return Err(SourceError::new(span, format!("invalid group name {name:?}")));
            }
            if !inv.groups.contains_key(name) {
                if kind == "vars" && !pending.contains_key(name) {
                    pending.insert(name.to_string(), (span.clone(), true, Vec::new()));
                }
                inv.group(name);
            }
            if kind != "vars" {
                if let Some((_, is_vars, parents)) = pending.shift_remove(name) {
                    if !is_vars {
                        for p in parents {
                            inv.add_child(&p, name);
                        }
                    }
                }
            }
            section = match kind {
                "" => Section::Hosts(name.into()),
                "vars" => Section::Vars(name.into()),
                "children" => Section::Children(name.into()),
                other => {
                    return Err(SourceError::new(span, format!("unknown section kind ':{other}'")).help("use [group], [group:vars] or [group:children]"))
                }
            };
            continue;
        }
        match &section {
            Section::Hosts(group) => {
                let words = shell_words::split(line).map_err(|e| SourceError::new(span.clone(), format!("cannot split host line: {e}")))?;
                let Some((first, rest)) = words.split_first() else { continue };
                let (pattern, port) = split_port(first);
                let mut vars = Vars::new();
                if let Some(p) = port {
                    vars.insert("ansible_port".into(), Json::from(p));
                }
                for w in rest {
                    let (k, v) = w.split_once('=').ok_or_else(|| {
                        SourceError::new(span.clone(), format!("expected key=value after the host name, found {w:?}"))
                    })?;
                    if vars.contains_key(k) {
                        eprintln!("warning: {span}: duplicate variable '{k}' on the line of host {pattern} (the last one wins, as in Ansible)");
                    }
                    vars.insert(k.to_string(), literal(v));
                }
                let names = range::expand(pattern).map_err(|m| SourceError::new(span.clone(), m))?;
                if (inv.hosts.len() + names.len()) as u64 > range::MAX_HOSTS {
                    return Err(SourceError::new(span.clone(), format!("the inventory would hold more than {} hosts", range::MAX_HOSTS)));
                }
                inv.add_hosts(group, &names, vars);
            }
            Section::Vars(group) => {
                let (k, v) = line.split_once('=').ok_or_else(|| SourceError::new(span.clone(), "expected key=value in a :vars section"))?;
                // As Ansible: the value is read as a Python literal when it is one (80, 1.10, [1, 13],
                // "quoted"), else kept as text (true, yes, 0644 stay strings).
                let v = v.trim();
                let value = super::pyliteral::literal_eval(v).unwrap_or_else(|| Json::String(v.to_string()));
                inv.sets_variable(false);
                inv.group(group).vars.insert(k.trim().to_string(), value);
            }
            Section::Children(group) => {
                let child = line.split_whitespace().next().unwrap_or(line);
                if inv.groups.contains_key(child) {
                    inv.add_child(group, child);
                } else {
                    pending.entry(child.to_string()).or_insert_with(|| (span.clone(), false, Vec::new())).2.push(group.clone());
                }
            }
        }
    }
    if let Some((name, (span, is_vars, parents))) = pending.into_iter().next() {
        return Err(if is_vars {
            SourceError::new(span, format!("section [{name}:vars] is not valid for undefined group '{name}'")).help(format!("declare the group with a [{name}] or [{name}:children] section"))
        } else {
            SourceError::new(span, format!("section [{}:children] includes undefined group '{name}'", parents.last().cloned().unwrap_or_default())).help(format!("declare it with a [{name}] section (empty is fine)"))
        });
    }
    Ok(())
}


/// Python's `ast.literal_eval`, as Ansible reads a host line's values, else the text itself.
fn literal(v: &str) -> Json {
    super::pyliteral::literal_eval(v).unwrap_or_else(|| Json::String(v.to_string()))
}
