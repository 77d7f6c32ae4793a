//! Inventory plugin configuration files (a YAML file with `plugin:`). ansible-core's
//! `constructed` plugin is implemented as Ansible runs it: over the hosts read so far, in order,
//! it sets `compose` variables, adds hosts to `groups` whose condition is true, and to
//! `keyed_groups` named after a variable's value. Every other plugin is refused by name.

use std::path::Path;

use minijinja::value::{Value, ValueKind};
use serde_json::Value as Json;

use super::Inventory;
use crate::error::SResult;
use crate::template::Templates;
use crate::yaml::Node;

/// The plugin configuration, when `text` is one (a mapping with a `plugin` key).
pub fn plugin_of(text: &str, path: &Path) -> SResult<Option<Node>> {
    if !text.lines().any(|l| l.starts_with("plugin:")) {
        return Ok(None);
    }
    let (root, _) = crate::yaml::parse_str_lenient(text, path)?;
    Ok(root.get("plugin").is_some().then_some(root))
}

const OPTIONS: &[&str] = &["plugin", "strict", "compose", "groups", "keyed_groups", "leading_separator", "use_vars_plugins", "use_extra_vars", "cache"];

pub fn run(inv: &mut Inventory, config: &Node) -> SResult<()> {
    let plugin = config.get("plugin").and_then(Node::as_str).unwrap_or_default();
    match plugin {
        "constructed" | "ansible.builtin.constructed" => {}
        other => {
            let node = config.get("plugin").unwrap_or(config);
            let (collection, hint) = match other.rsplitn(2, '.').nth(1) {
                Some("ansible.builtin") | None => ("ansible-core".to_string(), "recover reads YAML, INI and TOML inventories and the constructed plugin"),
                Some(c) => (format!("the {c} collection"), "list the hosts in a YAML, INI or TOML inventory (`ansible-inventory -i SOURCE --list --yaml` writes one)"),
            };
            return Err(node.error(format!("inventory plugin '{other}' (from {collection}) is not supported by recover")).help(hint));
        }
    }
    for (k, v) in config.as_map().unwrap_or_default() {
        let key = k.scalar_string().unwrap_or_default();
        if !OPTIONS.contains(&key.as_str()) {
            return Err(k.error(format!("unknown option '{key}' of the constructed inventory plugin")).help(format!("its options: {}", OPTIONS.join(", "))));
        }
        let on = matches!(v.value, crate::yaml::Value::Bool(true));
        if matches!(key.as_str(), "use_vars_plugins" | "use_extra_vars" | "cache") && on {
            return Err(k.error(format!("constructed: `{key}: true` is not implemented by recover")).help("the plugin sees the variables of the inventory sources read before it"));
        }
    }
    let strict = matches!(config.get("strict").map(|n| &n.value), Some(crate::yaml::Value::Bool(true)));
    let leading_separator = !matches!(config.get("leading_separator").map(|n| &n.value), Some(crate::yaml::Value::Bool(false)));
    let compose = entries(config, "compose")?;
    let groups = entries(config, "groups")?;
    let keyed: Vec<Node> = match config.get("keyed_groups") {
        None => Vec::new(),
        Some(n) if matches!(n.value, crate::yaml::Value::Null) => Vec::new(),
        Some(n) => n.as_seq().ok_or_else(|| n.error("`keyed_groups` must be a list of mappings with `key`"))?.to_vec(),
    };
    for k in &keyed {
        if k.as_map().is_none() {
            return Err(k.error("a keyed group must be a mapping with `key` (and `prefix`, `separator`, `default_value`, `trailing_separator`, `parent_group`)"));
        }
        if k.get("default_value").is_some() && k.get("trailing_separator").is_some() {
            return Err(k.error("parameters are mutually exclusive for keyed groups: default_value|trailing_separator"));
        }
    }
    let t = Templates::new();
    let hosts: Vec<String> = inv.hosts.keys().cloned().collect();
    let fail = |what: String, at: &Node| at.error(what);
    for host in hosts {
        for (name, expr) in &compose {
            match eval(&t, inv, &host, expr) {
                Ok(v) => {
                    let data = crate::template::json_of(&v).map_err(|e| fail(format!("could not set {name} for host {host}: {e}"), expr))?;
                    let data = if inv.sets_variable(false) { mark(data, &trusted_strings(&host, &inv.host_vars(&host))) } else { data };
                    inv.hosts.get_mut(&host).map(|hv| hv.insert(name.clone(), data));
                }
                Err(e) if strict => return Err(fail(format!("could not set {name} for host {host}: {e}"), expr)),
                Err(_) => {}
            }
        }
        for (name, expr) in &groups {
            let group = safe_group_name(name);
            let result = eval(&t, inv, &host, expr).and_then(|v| {
                if v.kind() == ValueKind::Bool {
                    Ok(v.is_true())
                } else {
                    Err(format!("the conditional result was {v} of type {:?}, not a boolean", v.kind()))
                }
            });
            match result {
                Ok(true) => inv.add_host(&group, &host, Default::default()),
                Ok(false) => {}
                Err(e) if strict => return Err(fail(format!("could not add host {host} to group {group}: {e}"), expr)),
                Err(_) => {}
            }
        }
        for k in &keyed {
            keyed_group(&t, inv, &host, k, strict, leading_separator)?;
        }
    }
    Ok(())
}

fn entries(config: &Node, key: &str) -> SResult<Vec<(String, Node)>> {
    match config.get(key) {
        None => Ok(Vec::new()),
        Some(n) if matches!(n.value, crate::yaml::Value::Null) => Ok(Vec::new()),
        Some(n) => Ok(n
            .as_map()
            .ok_or_else(|| n.error(format!("`{key}` must be a mapping of names to expressions")))?
            .iter()
            .map(|(k, v)| (k.scalar_string().unwrap_or_default(), v.clone()))
            .collect()),
    }
}

/// The host's variables as the plugin sees them: its groups' and its own, with the magic ones.
fn host_context(t: &Templates, inv: &Inventory, host: &str) -> Value {
    let mut vars = inv.host_vars(host);
    vars.insert("inventory_hostname".into(), Json::String(host.to_string()));
    vars.insert("inventory_hostname_short".into(), Json::String(host.split('.').next().unwrap_or(host).to_string()));
    vars.insert("group_names".into(), serde_json::json!(inv.group_names(host)));
    t.context(vars)
}

fn eval(t: &Templates, inv: &Inventory, host: &str, expr: &Node) -> Result<Value, String> {
    let Some(src) = expr.as_str() else {
        return Ok(crate::template::to_value(expr.to_json()));
    };
    let v = t.eval(src, &host_context(t, inv, host)).map_err(|e| e.to_string())?;
    if v.is_undefined() {
        return Err(format!("'{}' is undefined", src.trim()));
    }
    Ok(v)
}

/// A string an expression made is data in Ansible (unsafe), and prints so in `--list`; a
/// variable's string passed through keeps its trust. A result string equal to a trusted string
/// of the host's variables counts as passed through.
fn mark(v: Json, trusted: &std::collections::HashSet<String>) -> Json {
    match v {
        Json::String(s) if trusted.contains(&s) => Json::String(s),
        Json::String(s) => crate::template::unsafe_text(s),
        Json::Array(a) => Json::Array(a.into_iter().map(|v| mark(v, trusted)).collect()),
        Json::Object(m) => Json::Object(m.into_iter().map(|(k, v)| (k, mark(v, trusted))).collect()),
        other => other,
    }
}

/// The strings a host's variables (and its name) hold, less those already marked as data.
fn trusted_strings(host: &str, vars: &crate::template::Vars) -> std::collections::HashSet<String> {
    fn walk(v: &Json, out: &mut std::collections::HashSet<String>) {
        match v {
            Json::String(s) => {
                out.insert(s.clone());
            }
            Json::Array(a) => a.iter().for_each(|v| walk(v, out)),
            Json::Object(_) if crate::template::as_unsafe(v).is_some() || crate::template::as_vault(v).is_some() => {}
            Json::Object(m) => m.values().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = std::collections::HashSet::from([host.to_string()]);
    vars.values().for_each(|v| walk(v, &mut out));
    out
}

fn is_default(v: &Json) -> bool {
    matches!(v, Json::Null) || v.as_str() == Some("")
}

fn keyed_group(t: &Templates, inv: &mut Inventory, host: &str, k: &Node, strict: bool, leading_separator: bool) -> SResult<()> {
    let Some(key_node) = k.get("key") else {
        return Err(k.error("a keyed group needs `key`"));
    };
    let key = match eval(t, inv, host, key_node).and_then(|v| crate::template::json_of(&v).map_err(|e| e.to_string())) {
        Ok(v) => v,
        Err(e) if strict => return Err(key_node.error(format!("could not generate group for host {host} from {}: {e}", key_node.scalar_string().unwrap_or_default()))),
        Err(_) => return Ok(()),
    };
    let text = |name: &str| k.get(name).and_then(Node::scalar_string);
    // `default_value: null` is no default, as Ansible reads it.
    let default_value: Option<String> = k.get("default_value").filter(|n| !matches!(n.value, crate::yaml::Value::Null)).map(|n| n.scalar_string().unwrap_or_default());
    let trailing_false = matches!(k.get("trailing_separator").map(|n| &n.value), Some(crate::yaml::Value::Bool(false)));
    let truthy = match &key {
        Json::Null => false,
        Json::Bool(b) => *b,
        Json::Number(n) => n.as_f64() != Some(0.0),
        Json::String(s) => !s.is_empty(),
        Json::Array(a) => !a.is_empty(),
        Json::Object(m) => !m.is_empty(),
    };
    let use_default = is_default(&key) && default_value.is_some();
    if !(truthy || use_default) {
        let empty_collection = matches!(&key, Json::Array(a) if a.is_empty()) || matches!(&key, Json::Object(m) if m.is_empty());
        if strict && !empty_collection {
            return Err(key_node.error(format!("no key or key resulted empty for {} in host {host}, invalid entry", key_node.scalar_string().unwrap_or_default())));
        }
        return Ok(());
    }
    let prefix = text("prefix").unwrap_or_default();
    let mut sep = text("separator").unwrap_or_else(|| "_".into());
    let parent = match k.get("parent_group").and_then(Node::as_str) {
        Some(raw) => match t.render_str(raw, &host_context(t, inv, host), &k.span) {
            Ok(p) => Some(p),
            Err(e) if strict => return Err(e),
            Err(_) => return Ok(()),
        },
        None => None,
    };
    let mut names = Vec::new();
    if use_default {
        names.extend(default_value.clone());
    } else {
        match &key {
            Json::String(s) => names.push(s.clone()),
            Json::Array(items) => {
                for i in items {
                    names.push(match &default_value {
                        Some(d) if is_default(i) => d.clone(),
                        _ => super::show::py_str(i),
                    });
                }
            }
            Json::Object(m) => {
                for (g, v) in m {
                    let mut bare = format!("{g}{sep}{}", super::show::py_str(v));
                    if is_default(v) {
                        match &default_value {
                            Some(d) => bare = format!("{g}{sep}{d}"),
                            None if trailing_false => bare = g.clone(),
                            None => {}
                        }
                    }
                    names.push(bare);
                }
            }
            other => {
                let kind = match other {
                    Json::Bool(_) => "bool",
                    Json::Number(n) if n.is_f64() => "float",
                    _ => "int",
                };
                return Err(key_node.error(format!("invalid group name format, expected a string or a list of them or dictionary, got: {kind}")));
            }
        }
    }
    for bare in names {
        if prefix.is_empty() && !leading_separator {
            sep.clear();
        }
        let group = safe_group_name(&format!("{prefix}{sep}{bare}"));
        inv.add_host(&group, host, Default::default());
        if let Some(p) = parent.as_deref().filter(|p| !p.is_empty()) {
            let p = safe_group_name(p);
            inv.add_child(&p, &group);
        }
    }
    Ok(())
}

/// Ansible's `to_safe_group_name(force=True)`: a leading digit and every non-word character
/// become `_`.
pub fn safe_group_name(name: &str) -> String {
    name.chars()
        .enumerate()
        .map(|(i, c)| if (c.is_alphanumeric() || c == '_') && !(i == 0 && c.is_numeric()) { c } else { '_' })
        .collect()
}
