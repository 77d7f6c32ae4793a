//! The YAML inventory format (`all: {hosts, vars, children}`).

use std::path::Path;

use super::{range, Inventory};
use crate::error::SResult;
use crate::template::Vars;
use crate::yaml::{Node, Value};

pub fn parse(inv: &mut Inventory, text: &str, path: &Path) -> SResult<()> {
    let (root, warnings) = crate::yaml::parse_str_lenient(text, path)?;
    for w in warnings {
        eprintln!("warning: {w}");
    }
    match &root.value {
        Value::Null => Ok(()),
        Value::Map(entries) => {
            for (k, v) in entries {
                let name = group_name(k)?;
                parse_group(inv, &name, v, 0)?;
            }
            Ok(())
        }
        _ => Err(root.error(format!("a YAML inventory must be a mapping of groups (like `all:`), found {}", root.kind()))),
    }
}

fn group_name(k: &Node) -> SResult<String> {
    let name = k.scalar_string().ok_or_else(|| k.error("a group name must be text"))?;
    if name.is_empty() || name.contains([' ', ':', '[', ']', ',']) {
        return Err(k.error(format!("invalid group name {name:?}")).help("group names are letters, digits, '_' and '-'"));
    }
    Ok(name)
}

fn parse_group(inv: &mut Inventory, name: &str, node: &Node, depth: usize) -> SResult<()> {
    inv.group(name);
    if depth > 100 {
        return Err(node.error("groups nested more than 100 levels deep"));
    }
    let entries = match &node.value {
        Value::Null => return Ok(()),
        Value::Map(e) => e,
        _ => return Err(node.error(format!("group '{name}' must be a mapping with hosts, vars and children, found {}", node.kind()))),
    };
    for (k, v) in entries {
        match k.as_str() {
            Some("hosts") => match &v.value {
                Value::Null => {}
                Value::Map(hosts) => {
                    for (hk, hv) in hosts {
                        let pattern = hk.scalar_string().ok_or_else(|| hk.error("a host name must be text"))?;
                        let (pattern, port) = split_port(&pattern);
                        let names = range::expand(pattern).map_err(|m| hk.error(m))?;
                        let mut vars = match &hv.value {
                            Value::Null => Vars::new(),
                            Value::Map(_) => hv.to_json().as_object().cloned().unwrap_or_default().into_iter().collect(),
                            _ => return Err(hv.error(format!("host '{pattern}' must map to its variables, found {}", hv.kind()))),
                        };
                        if let Some(p) = port {
                            vars.entry("ansible_port".into()).or_insert(serde_json::json!(p));
                        }
                        inv.add_hosts(name, &names, vars);
                    }
                }
                _ => return Err(v.error(format!("`hosts` of group '{name}' must be a mapping of host names, found {}", v.kind()))),
            },
            Some("vars") => match v.to_json() {
                serde_json::Value::Object(m) => {
                    if !m.is_empty() {
                        inv.sets_variable(false);
                    }
                    inv.group(name).vars.extend(m)
                }
                serde_json::Value::Null => {}
                _ => return Err(v.error(format!("`vars` of group '{name}' must be a mapping, found {}", v.kind()))),
            },
            Some("children") => match &v.value {
                Value::Null => {}
                Value::Map(children) => {
                    for (ck, cv) in children {
                        let child = group_name(ck)?;
                        inv.add_child(name, &child);
                        parse_group(inv, &child, cv, depth + 1)?;
                    }
                }
                _ => return Err(v.error(format!("`children` of group '{name}' must be a mapping of groups, found {}", v.kind()))),
            },
            _ => {
                return Err(k
                    .error(format!("unknown key {:?} in group '{name}'", k.scalar_string().unwrap_or_default()))
                    .help("a group holds `hosts`, `vars` and `children`"))
            }
        }
    }
    Ok(())
}

/// `host:2222` -> (`host`, Some(2222)); IPv6 and ranges are left alone.
pub fn split_port(pattern: &str) -> (&str, Option<u16>) {
    if pattern.matches(':').count() == 1 && !pattern.contains('[') {
        if let Some((h, p)) = pattern.rsplit_once(':') {
            if let Ok(port) = p.parse::<u16>() {
                return (h, Some(port));
            }
        }
    }
    (pattern, None)
}
