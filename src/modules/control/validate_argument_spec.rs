//! `validate_argument_spec`: variables checked against an argument spec, as ansible-core's
//! action does for a role with `meta/argument_specs.yml` (the loader puts this step first in
//! such a role, as ansible-core does). The values are the role's parameters over the variables
//! of the spec's names; checked: required, type (with ansible-core's conversions), choices,
//! list elements, and a dict's or a list of dicts' suboptions. Changes nothing on the host.

use async_trait::async_trait;
use documented::Documented;
use serde_json::{json, Map, Value as Json};

use crate::modules::{opt, req, ArgSpec, Kind, Module, Plan, StepCtx, StepError};

/// `validate_argument_spec`: variables checked against an argument specification (a role's
/// `meta/argument_specs.yml`): types, required, choices, defaults.
///
/// Returns: `argument_spec_data`, `argument_errors` (when it fails), `validate_args_context`,
/// `msg`.
///
/// Check mode: checks as in a real run.
#[derive(Documented)]
pub struct ValidateArgumentSpec;

/// Python's type name of a value, as ansible-core's messages give it.
fn py_type(v: &Json) -> &'static str {
    match v {
        Json::String(_) => "<class 'str'>",
        Json::Bool(_) => "<class 'bool'>",
        Json::Number(n) if n.is_f64() => "<class 'float'>",
        Json::Number(_) => "<class 'int'>",
        Json::Array(_) => "<class 'list'>",
        Json::Object(_) => "<class 'dict'>",
        Json::Null => "<class 'NoneType'>",
    }
}

/// ansible-core's type checkers: the converted value, or why not.
fn convert(v: &Json, ty: &str) -> Result<Json, String> {
    match ty {
        "str" | "path" => Ok(match v {
            Json::String(_) => v.clone(),
            other => json!(crate::template::pyrepr::py_str(&crate::template::to_value(other))),
        }),
        "raw" | "jsonarg" | "json" => Ok(v.clone()),
        "int" => match v {
            Json::Number(n) if n.is_i64() || n.is_u64() => Ok(v.clone()),
            Json::String(s) => s.trim().parse::<i64>().map(|n| json!(n)).map_err(|_| format!("{} cannot be converted to an int", py_type(v))),
            Json::Bool(b) => Ok(json!(*b as i64)),
            _ => Err(format!("{} cannot be converted to an int", py_type(v))),
        },
        "float" => match v {
            Json::Number(n) => Ok(json!(n.as_f64())),
            Json::String(s) => s.trim().parse::<f64>().map(|n| json!(n)).map_err(|_| format!("{} cannot be converted to a float", py_type(v))),
            _ => Err(format!("{} cannot be converted to a float", py_type(v))),
        },
        "bool" => crate::modules::de::bool_value(v).map(|b| json!(b)).ok_or_else(|| {
            format!("The value '{}' is not a valid boolean.  Valid booleans include: 0, 'on', 'f', 'no', 'yes', 1, 't', 'y', 'false', 'true', 'off', 'n', '1', '0'", crate::template::pyrepr::py_str(&crate::template::to_value(v)))
        }),
        "list" => match v {
            Json::Array(_) => Ok(v.clone()),
            Json::String(s) => Ok(json!(s.split(',').map(str::to_string).collect::<Vec<_>>())),
            Json::Number(_) => Ok(json!([v.to_string()])),
            _ => Err(format!("{} cannot be converted to a list", py_type(v))),
        },
        "dict" => match v {
            Json::Object(_) => Ok(v.clone()),
            Json::String(s) if s.trim_start().starts_with('{') => serde_json::from_str(s).map_err(|e| e.to_string()),
            Json::String(s) => {
                let mut m = Map::new();
                for pair in s.split([',', ' ']).filter(|p| !p.is_empty()) {
                    let (k, val) = pair.split_once('=').ok_or_else(|| format!("dictionary requested, could not parse JSON or key=value"))?;
                    m.insert(k.to_string(), json!(val));
                }
                Ok(Json::Object(m))
            }
            _ => Err(format!("{} cannot be converted to a dict", py_type(v))),
        },
        "bytes" | "bits" => match v {
            Json::Number(_) => Ok(v.clone()),
            Json::String(s) if !s.trim().is_empty() => Ok(v.clone()),
            _ => Err(format!("{} cannot be converted to a Byte value", py_type(v))),
        },
        other => Err(format!("unknown type '{other}' in the argument spec")),
    }
}

/// Checks `params` against `spec` (options by name), filling defaults; the messages of what
/// does not fit, as ansible-core words them.
fn check(spec: &Map<String, Json>, params: &mut Map<String, Json>, context: &[String], errors: &mut Vec<String>) {
    let ctx_note = |msg: String| if context.is_empty() { msg } else { format!("{msg} found in {}", context.join(" -> ")) };
    // Aliases give their value to the option's own name.
    for (name, o) in spec {
        if params.contains_key(name) {
            continue;
        }
        for a in o.get("aliases").and_then(Json::as_array).into_iter().flatten().filter_map(Json::as_str) {
            if let Some(v) = params.remove(a) {
                params.insert(name.clone(), v);
                break;
            }
        }
    }
    let mut missing: Vec<&str> = spec
        .iter()
        .filter(|(n, o)| o.get("required").and_then(crate::modules::de::bool_value) == Some(true) && params.get(*n).is_none_or(Json::is_null))
        .map(|(n, _)| n.as_str())
        .collect();
    if !missing.is_empty() {
        missing.sort();
        errors.push(ctx_note(format!("missing required arguments: {}", missing.join(", "))));
    }
    for (name, o) in spec {
        if !params.contains_key(name) || params.get(name).is_some_and(Json::is_null) {
            if let Some(d) = o.get("default").filter(|d| !d.is_null()) {
                params.insert(name.clone(), d.clone());
            }
        }
        let Some(value) = params.get(name).cloned().filter(|v| !v.is_null()) else { continue };
        let ty = o.get("type").and_then(Json::as_str).unwrap_or("str");
        let converted = match convert(&value, ty) {
            Ok(c) => c,
            Err(e) => {
                let mut msg = format!("argument '{name}' is of type {}", py_type(&value));
                if !context.is_empty() {
                    msg.push_str(&format!(" found in '{}'.", context.join(" -> ")));
                }
                errors.push(format!("{msg} and we were unable to convert to {ty}: {e}"));
                continue;
            }
        };
        let converted = match (o.get("elements").and_then(Json::as_str), converted) {
            (Some(et), Json::Array(items)) => Json::Array(
                items
                    .iter()
                    .filter_map(|i| match convert(i, et) {
                        Ok(c) => Some(c),
                        Err(e) => {
                            errors.push(format!("Elements value for option '{name}' is of type {} and we were unable to convert to {et}: {e}", py_type(i)));
                            None
                        }
                    })
                    .collect(),
            ),
            (_, c) => c,
        };
        if let Some(choices) = o.get("choices").and_then(Json::as_array) {
            let fits = |v: &Json| choices.iter().any(|c| c == v || (c.as_str().is_some() && c.as_str() == v.as_str()) || crate::template::pyrepr::py_str(&crate::template::to_value(c)) == crate::template::pyrepr::py_str(&crate::template::to_value(v)));
            let shown = choices.iter().map(|c| crate::template::pyrepr::py_str(&crate::template::to_value(c))).collect::<Vec<_>>().join(", ");
            match &converted {
                Json::Array(items) => {
                    let bad: Vec<String> = items.iter().filter(|i| !fits(i)).map(|i| crate::template::pyrepr::py_str(&crate::template::to_value(i))).collect();
                    if !bad.is_empty() {
                        errors.push(ctx_note(format!("value of {name} must be one or more of: {shown}. Got no match for: {}", bad.join(", "))));
                    }
                }
                v if !fits(v) => errors.push(ctx_note(format!("value of {name} must be one of: {shown}, got: {}", crate::template::pyrepr::py_str(&crate::template::to_value(v))))),
                _ => {}
            }
        }
        let mut converted = converted;
        if let Some(sub) = o.get("options").and_then(Json::as_object) {
            let mut inner_ctx = context.to_vec();
            inner_ctx.push(name.clone());
            match &mut converted {
                Json::Object(m) => check(sub, m, &inner_ctx, errors),
                Json::Array(items) => {
                    for i in items.iter_mut() {
                        if let Json::Object(m) = i {
                            check(sub, m, &inner_ctx, errors);
                        }
                    }
                }
                _ => {}
            }
        }
        params.insert(name.clone(), converted);
    }
}

#[async_trait]
impl Module for ValidateArgumentSpec {
    fn name(&self) -> &'static str {
        "validate_argument_spec"
    }
    fn doc(&self) -> &'static str {
        Self::DOCS
    }
    fn spec(&self) -> &'static [ArgSpec] {
        const S: &[ArgSpec] = &[
            req("argument_spec", Kind::Map).doc("The specification (as a role's `meta/argument_specs.yml` writes one entry point's `options`)."),
            opt("provided_arguments", Kind::Map).doc("The arguments to check (the task's variables otherwise)."),
            opt("validate_args_context", Kind::Map).doc("Where the specification comes from, returned as is (for messages)."),
        ];
        S
    }
    async fn plan(&self, ctx: &StepCtx<'_>, args: &Json) -> Result<Plan, StepError> {
        let spec = args.get("argument_spec").and_then(Json::as_object).ok_or_else(|| StepError::failed("Incorrect type for argument_spec, expected dict"))?;
        let provided = match args.get("provided_arguments") {
            None | Some(Json::Null) => Map::new(),
            Some(Json::Object(m)) => m.clone(),
            Some(other) => return Err(StepError::failed(format!("Incorrect type for provided_arguments, expected dict and got {other}"))),
        };
        // The variables of the spec's names (and its aliases'), under the provided ones.
        let mut params = Map::new();
        for (name, o) in spec {
            let names = std::iter::once(name.as_str()).chain(o.get("aliases").and_then(Json::as_array).into_iter().flatten().filter_map(Json::as_str));
            for n in names {
                if let Ok(v) = ctx.vars.get_attr(n) {
                    if !v.is_undefined() {
                        params.insert(n.to_string(), crate::template::json_of(&v).map_err(|e| StepError::failed(format!("variable '{n}': {e}")))?);
                    }
                }
            }
        }
        params.extend(provided);
        let mut errors = Vec::new();
        check(spec, &mut params, &[], &mut errors);
        let context = args.get("validate_args_context").cloned().unwrap_or(json!({}));
        if !errors.is_empty() {
            return Err(StepError::Failed {
                msg: format!("Validation of arguments failed:\n{}", errors.join("\n")),
                result: json!({ "argument_errors": errors, "argument_spec_data": spec, "validate_args_context": context }),
            });
        }
        Ok(Plan::done(json!({ "msg": "The arg spec validation passed", "validate_args_context": context })))
    }
}
