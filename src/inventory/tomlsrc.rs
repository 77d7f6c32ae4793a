//! The TOML inventory format of ansible-core's `toml` plugin: each top-level table is a group
//! with `hosts` (a table of host patterns to their variables), `vars` and `children` (a list of
//! group names).

use std::path::Path;

use serde_json::Value as Json;

use super::{range, yamlsrc::split_port, Inventory};
use crate::error::{SResult, SourceError, Span};
use crate::template::Vars;

/// Its strings are trusted as templates, or data (`{"__ansible_unsafe": ...}` in `--list`, never
/// templated) when an earlier YAML or INI source set variables, as ansible-core 2.19 decides.
pub fn parse(inv: &mut Inventory, text: &str, path: &Path) -> SResult<()> {
    let table: toml::Table = toml::from_str(text).map_err(|e| {
        let (line, col) = e.span().map(|s| line_col(text, s.start)).unwrap_or((0, 0));
        let file = std::sync::Arc::new(path.to_path_buf());
        SourceError::new(Span::new(&file, line, col), format!("TOML syntax error: {}", e.message()))
    })?;
    let at = |group: &str| {
        let file = std::sync::Arc::new(path.to_path_buf());
        let (line, col) = text.find(&format!("[{group}")).map(|o| line_col(text, o)).unwrap_or((0, 0));
        Span::new(&file, line, col)
    };
    for (name, data) in &table {
        let toml::Value::Table(group) = data else {
            eprintln!("warning: {}: skipping '{name}': not a valid group definition", path.display());
            continue;
        };
        inv.group(name);
        for (key, value) in group {
            match (key.as_str(), value) {
                ("vars", toml::Value::Table(vars)) => {
                    for (k, v) in vars {
                        let untrusted = inv.sets_variable(true);
                        inv.group(name).vars.insert(k.clone(), data_of(v, untrusted));
                    }
                }
                ("children", toml::Value::Array(children)) => {
                    for c in children {
                        let child = c.as_str().ok_or_else(|| SourceError::new(at(name), format!("`children` of group '{name}' must list group names")))?;
                        inv.add_child(name, child);
                    }
                }
                ("hosts", toml::Value::Table(hosts)) => {
                    for (pattern, vars) in hosts {
                        let toml::Value::Table(vars) = vars else {
                            return Err(SourceError::new(at(name), format!("host '{pattern}' of group '{name}' must map to a table of its variables (`{pattern} = {{}}` for none)")));
                        };
                        let (pattern, port) = split_port(pattern);
                        let names = range::expand(pattern).map_err(|m| SourceError::new(at(name), m))?;
                        let untrusted = if vars.is_empty() && port.is_none() { false } else { inv.sets_variable(true) };
                        let mut hv: Vars = vars.iter().map(|(k, v)| (k.clone(), data_of(v, untrusted))).collect();
                        if let Some(p) = port {
                            hv.entry("ansible_port".into()).or_insert(Json::from(p));
                        }
                        inv.add_hosts(name, &names, hv);
                    }
                }
                ("vars" | "children" | "hosts", other) => {
                    let want = if key == "children" { "a list" } else { "a table" };
                    return Err(SourceError::new(at(name), format!("`{key}` of group '{name}' must be {want}, found {}", other.type_str())));
                }
                _ => eprintln!("warning: {}: skipping unexpected key \"{key}\" in group \"{name}\", only \"vars\", \"children\" and \"hosts\" are valid", path.display()),
            }
        }
    }
    Ok(())
}

/// A TOML value as variable data (a datetime as its TOML text).
fn data_of(v: &toml::Value, unsafe_: bool) -> Json {
    match v {
        toml::Value::String(s) if unsafe_ => crate::template::unsafe_text(s.clone()),
        toml::Value::String(s) => Json::String(s.clone()),
        toml::Value::Integer(i) => Json::from(*i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f).map(Json::Number).unwrap_or(Json::Null),
        toml::Value::Boolean(b) => Json::Bool(*b),
        toml::Value::Datetime(d) => Json::String(d.to_string()),
        toml::Value::Array(a) => Json::Array(a.iter().map(|v| data_of(v, unsafe_)).collect()),
        toml::Value::Table(t) => Json::Object(t.iter().map(|(k, v)| (k.clone(), data_of(v, unsafe_))).collect()),
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}
