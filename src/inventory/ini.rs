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
            inv.group(name);
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
                for h in names {
                    inv.add_host(group, &h, vars.clone());
                }
            }
            Section::Vars(group) => {
                let (k, v) = line.split_once('=').ok_or_else(|| SourceError::new(span.clone(), "expected key=value in a :vars section"))?;
                inv.group(group).vars.insert(k.trim().to_string(), Json::String(unquote(v.trim())));
            }
            Section::Children(group) => {
                let child = line.split_whitespace().next().unwrap_or(line);
                inv.add_child(group, child);
            }
        }
    }
    Ok(())
}

fn unquote(v: &str) -> String {
    for q in ['"', '\''] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            return v[1..v.len() - 1].to_string();
        }
    }
    v.to_string()
}

/// Python's `ast.literal_eval` for the common cases, else the text itself.
fn literal(v: &str) -> Json {
    match v {
        "True" => return Json::Bool(true),
        "False" => return Json::Bool(false),
        "None" => return Json::Null,
        _ => {}
    }
    if let Ok(i) = v.parse::<i64>() {
        return Json::from(i);
    }
    if v.contains('.') {
        if let Ok(f) = v.parse::<f64>() {
            if let Some(n) = serde_json::Number::from_f64(f) {
                return Json::Number(n);
            }
        }
    }
    if (v.starts_with('[') && v.ends_with(']')) || (v.starts_with('{') && v.ends_with('}')) {
        if let Ok(j) = serde_json::from_str::<Json>(&v.replace('\'', "\"")) {
            return j;
        }
    }
    Json::String(v.to_string())
}
