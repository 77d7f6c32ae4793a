//! Arguments: the load-time check of a task's arguments against its module's [`ArgSpec`]s,
//! and the typed, Ansible-loose view of rendered arguments a module plans with.

use serde_json::Value as Json;

use super::{modes, unbuilt_args};
use crate::error::{SResult, SourceError};
use crate::modules::{get, Kind, StepError};
use crate::playbook::Task;

/// Load-time check of a task's arguments against its module's spec.
pub fn validate(task: &Task) -> SResult<()> {
    let module = get(&task.module).ok_or_else(|| SourceError::new(task.module_span.clone(), format!("unknown module '{}'", task.module)))?;
    let Json::Object(args) = &task.args else { return Ok(()) };
    if module.free_keys() {
        return module.validate(task);
    }
    let spec = module.spec();
    for (k, v) in args {
        if k == "_raw_params" {
            // `assert: '{{ item }}'`: the arguments are a mapping the template gives at run time.
            if v.as_str().is_some_and(crate::template::is_template) {
                return Ok(());
            }
            if !module.free_form() {
                return Err(SourceError::new(task.module_span.clone(), format!("module '{}' needs arguments as a mapping (like `path: /x`), not a string", module.name())));
            }
            continue;
        }
        let Some(s) = spec.iter().find(|s| s.named(k)) else {
            if unbuilt_args::known(module.name(), k) {
                continue;
            }
            let names: Vec<&str> = spec.iter().map(|s| s.name).collect();
            let every: Vec<&str> = spec.iter().flat_map(|s| std::iter::once(s.name).chain(s.aliases.iter().copied())).collect();
            let e = SourceError::new(task.arg_span(k), format!("module '{}' has no argument '{k}'", module.name()));
            return Err(match crate::playbook::closest_name(k, &every) {
                Some(c) => e.help(format!("did you mean '{c}'? accepted: {}", names.join(", "))),
                None => e.help(format!("accepted: {}", names.join(", "))),
            });
        };
        if matches!(k.as_str(), "path" | "dest" | "src" | "name") && v.as_str() == Some("") && ["file", "copy", "template", "blockinfile", "stat", "slurp", "backup", "preserve_move"].contains(&module.name()) {
            return Err(SourceError::new(task.arg_span(k), format!("argument '{k}' of '{}' is empty", module.name())).help("give the path it works on"));
        }
        if k == "mode" && module.name() != "async_status" {
            check_mode(v).map_err(|m| SourceError::new(task.arg_span(k), format!("argument 'mode' of '{}': {m}", module.name())))?;
        }
        if !kind_ok(s.kind, v) {
            return Err(SourceError::new(task.arg_span(k), format!("argument '{k}' of '{}' must be {}, found {v}", module.name(), kind_name(s.kind))));
        }
    }
    for s in spec.iter().filter(|s| s.required) {
        let given = args.keys().any(|k| s.named(k));
        if !given {
            return Err(SourceError::new(task.module_span.clone(), format!("module '{}' needs argument '{}'", module.name(), s.name)));
        }
    }
    module.validate(task)
}

/// A literal `mode:` must be an octal mode (`0644`, `"0750"`); a template is checked when rendered.
fn check_mode(v: &Json) -> Result<(), String> {
    match v {
        Json::String(s) if crate::template::is_template(s) => Ok(()),
        Json::Number(n) if n.as_u64().is_some_and(|m| m <= 0o7777) => Ok(()),
        Json::String(s) if u32::from_str_radix(s.trim().trim_start_matches("0o"), 8).is_ok_and(|m| m <= 0o7777) => Ok(()),
        Json::String(s) if s.contains(['+', '-', '=']) => modes::check(s.trim()),
        Json::String(s) if ["preserve"].contains(&s.as_str()) => Err("mode: preserve is not supported by recover; write the mode in octal".into()),
        Json::Null => Ok(()),
        other => Err(format!("expected an octal mode like \"0644\", found {other}")),
    }
}

pub fn kind_ok(kind: Kind, v: &Json) -> bool {
    if matches!(v, Json::String(s) if crate::template::is_template(s)) {
        return true;
    }
    match kind {
        Kind::Any => true,
        Kind::Str => !v.is_array() && !v.is_object(),
        Kind::Bool => v.is_boolean() || matches!(v, Json::String(s) if ["yes", "no", "true", "false"].contains(&s.to_lowercase().as_str())),
        Kind::Int => v.is_i64() || v.is_u64() || matches!(v, Json::String(s) if s.parse::<i64>().is_ok()),
        Kind::List => v.is_array() || v.is_string() || v.is_number() || v.is_boolean(), // ansible-core: a number or bool is a list of one
        Kind::Map => v.is_object(),
    }
}

pub fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Any => "anything",
        Kind::Str => "text",
        Kind::Bool => "true or false",
        Kind::Int => "a whole number",
        Kind::List => "a list",
        Kind::Map => "a mapping",
    }
}

/// A typed view of rendered arguments: `deny_unknown_fields` structs, with a
/// clear message when a rendered value has the wrong type.
pub fn typed<T: serde::de::DeserializeOwned>(module: &str, args: &Json) -> Result<T, StepError> {
    let mut args = args.clone();
    if let Json::Object(m) = &mut args {
        m.retain(|_, v| v.as_str() != Some(crate::template::OMIT));
    }
    serde_json::from_value(args).map_err(|e| StepError::failed(format!("module '{module}': {e}")))
}

/// Serde helpers for Ansible-style loose values.
pub mod de {
    use serde::{Deserialize, Deserializer};
    use serde_json::Value as Json;

    /// Ansible's words for true and false (`yes`, `on`, `1`, `no`, ...; case ignored).
    pub fn bool_word(s: &str) -> Option<bool> {
        match s.to_lowercase().as_str() {
            "yes" | "true" | "on" | "1" | "y" => Some(true),
            "no" | "false" | "off" | "0" | "n" | "" => Some(false),
            _ => None,
        }
    }

    /// A value as Ansible's `bool` type reads it: `true`, `"yes"`, `1`; `None` when it is not one.
    pub fn bool_value(v: &Json) -> Option<bool> {
        match v {
            Json::Bool(b) => Some(*b),
            Json::Number(n) => Some(n.as_i64() == Some(1)),
            Json::String(s) => bool_word(s),
            _ => None,
        }
    }

    /// `true`, `yes`, `"true"`, `1` ...
    pub fn bool_loose<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
        let v = Option::<Json>::deserialize(d)?;
        match v {
            None | Some(Json::Null) => Ok(None),
            Some(v) => bool_value(&v).map(Some).ok_or_else(|| serde::de::Error::custom(format!("expected true or false, found {v}"))),
        }
    }

    /// A whole number written as a number or as text.
    pub fn u64_loose<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        let v = Option::<Json>::deserialize(d)?;
        Ok(match v {
            None | Some(Json::Null) => None,
            Some(Json::Number(n)) => Some(n.as_u64().ok_or_else(|| serde::de::Error::custom("expected a whole number"))?),
            Some(Json::String(s)) => Some(s.trim().parse().map_err(|_| serde::de::Error::custom(format!("expected a whole number, found {s:?}")))?),
            Some(other) => return Err(serde::de::Error::custom(format!("expected a whole number, found {other}"))),
        })
    }

    /// A file mode: `0644` (YAML octal, an int), `"0644"`, `"644"`; returned as the bits.
    pub fn mode<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
        let v = Option::<Json>::deserialize(d)?;
        Ok(match v {
            None | Some(Json::Null) => None,
            Some(Json::Number(n)) => Some(n.as_u64().filter(|m| *m <= 0o7777).ok_or_else(|| serde::de::Error::custom("mode out of range"))? as u32),
            Some(Json::String(s)) => Some(
                u32::from_str_radix(s.trim().trim_start_matches("0o"), 8)
                    .ok()
                    .filter(|m| *m <= 0o7777)
                    .ok_or_else(|| serde::de::Error::custom(format!("mode must be octal like '0644', found {s:?} (symbolic modes are not supported)")))?,
            ),
            Some(other) => return Err(serde::de::Error::custom(format!("bad mode {other}"))),
        })
    }

    /// A list written as a list or as one text.
    pub fn list_loose<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        let v = Option::<Json>::deserialize(d)?;
        Ok(match v {
            None | Some(Json::Null) => Vec::new(),
            Some(Json::Array(items)) => items.into_iter().map(|i| match i {
                Json::String(s) => s,
                other => other.to_string(),
            }).collect(),
            Some(Json::String(s)) => vec![s],
            Some(other) => vec![other.to_string()],
        })
    }
}
