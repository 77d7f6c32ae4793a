//! Filters, tests and lookups recover does not build in, from the operator's installed Ansible:
//! a collection's (`community.general.json_query`, `ansible.utils.ipaddr`) or one in a
//! `filter_plugins/`, `test_plugins/` or `lookup_plugins/` folder beside the playbook or in a
//! role. The template's source names them as ansible-core does; before it compiles, each such
//! name becomes a call of one generic filter or test (`x | __plugin_filter('ns.coll.f', args)`)
//! that hands the values to the controller's ansible-core (see [`crate::pyansible`]).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use minijinja::value::{Kwargs, Rest};
use minijinja::{Environment, Error, ErrorKind, Value};
use serde_json::Value as Json;

/// A name ansible-core would look up in a collection: `ns.coll.name`, not ansible.builtin's.
fn collection_name(name: &str) -> bool {
    name.matches('.').count() >= 2 && !name.starts_with("ansible.builtin.") && !name.starts_with("ansible.legacy.")
}

/// Whether recover's own engine has that filter or test (asked once per name).
fn builtin(kind: &str, name: &str) -> bool {
    static PRISTINE: OnceLock<super::Templates> = OnceLock::new();
    static SEEN: Mutex<Option<HashMap<String, bool>>> = Mutex::new(None);
    let key = format!("{kind}:{name}");
    if let Some(b) = SEEN.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert_with(HashMap::new).get(&key) {
        return *b;
    }
    let has = PRISTINE.get_or_init(super::Templates::new).has(kind, name);
    SEEN.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert_with(HashMap::new).insert(key, has);
    has
}

/// Whether `name` is a plugin for the controller's ansible-core to run.
pub fn is_plugin(kind: &str, name: &str) -> bool {
    if collection_name(name) {
        return true;
    }
    !name.contains('.') && !matches!(name, "not" | "defined" | "undefined" | "none" | "true" | "false") && !builtin(kind, name) && crate::pyansible::has_plugin(kind, name)
}

/// The source with each plugin filter and test written as a call of the generic one.
pub(crate) fn rewrite(src: &str) -> Cow<'_, str> {
    static FILTER: OnceLock<regex::Regex> = OnceLock::new();
    static TEST: OnceLock<regex::Regex> = OnceLock::new();
    if !src.contains('|') && !src.contains(" is ") {
        return Cow::Borrowed(src);
    }
    let filter = FILTER.get_or_init(|| regex::Regex::new(r"(\|\s*)([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)(\s*\(\s*(\))?)?").expect("static regex"));
    let test = TEST.get_or_init(|| regex::Regex::new(r"(\bis\s+(?:not\s+)?)([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)(\s*\(\s*(\))?)?").expect("static regex"));
    let mut changed = false;
    let mut out = String::with_capacity(src.len());
    let mut rest = src;
    // Only the code inside {{ }} and {% %} is rewritten.
    while let Some(open) = rest.find('{') {
        let after = &rest[open..];
        let close = if after.starts_with("{{") { "}}" } else if after.starts_with("{%") { "%}" } else {
            out.push_str(&rest[..open + 1]);
            rest = &rest[open + 1..];
            continue;
        };
        let Some(end) = super::code_end(&after[2..], close) else { break };
        out.push_str(&rest[..open + 2]);
        let code = &after[2..2 + end];
        let mut one = |re: &regex::Regex, kind: &str, code: &str| -> String {
            re.replace_all(code, |c: &regex::Captures| {
                let name = &c[2];
                if !is_plugin(kind, name) {
                    return c[0].to_string();
                }
                changed = true;
                let call = format!("{}__plugin_{kind}('{name}'", &c[1]);
                match (c.get(3), c.get(4)) {
                    (Some(_), Some(_)) | (None, _) => format!("{call})"),
                    (Some(_), None) => format!("{call}, "),
                }
            })
            .into_owned()
        };
        let code = one(filter, "filter", code);
        let code = one(test, "test", &code);
        out.push_str(&code);
        out.push_str(close);
        rest = &after[2 + end + 2..];
    }
    out.push_str(rest);
    if changed { Cow::Owned(out) } else { Cow::Borrowed(src) }
}

fn to_json(v: &Value) -> Result<Json, Error> {
    serde_json::to_value(v).map_err(|e| Error::new(ErrorKind::InvalidOperation, format!("a value for a plugin: {e}")))
}

fn call(kind: &str, value: &Value, name: &str, args: &[Value], kw: &Kwargs) -> Result<Value, Error> {
    let args: Vec<Json> = args.iter().map(to_json).collect::<Result<_, _>>()?;
    let mut kwargs = serde_json::Map::new();
    for k in kw.args() {
        let v: Value = kw.get(k)?;
        kwargs.insert(k.to_string(), to_json(&v)?);
    }
    let v = crate::pyansible::call_plugin(kind, name, &to_json(value)?, &args, &kwargs).map_err(|e| Error::new(ErrorKind::InvalidOperation, format!("{kind} '{name}' (ansible-core): {e}")))?;
    Ok(from_plugin(&v))
}

/// A plugin's JSON as a template value; a mapping whose keys are not strings comes as
/// `{"__recover_pairs": [[key, value], ...]}` and keeps its keys' types.
fn from_plugin(v: &Json) -> Value {
    match v {
        Json::Object(m) => match m.get("__recover_pairs").and_then(Json::as_array).filter(|_| m.len() == 1) {
            Some(pairs) => Value::from(pairs.iter().filter_map(|p| Some((from_plugin(p.get(0)?), from_plugin(p.get(1)?)))).collect::<indexmap::IndexMap<Value, Value>>()),
            None => Value::from(m.iter().map(|(k, x)| (Value::from(k.as_str()), from_plugin(x))).collect::<indexmap::IndexMap<Value, Value>>()),
        },
        Json::Array(items) => Value::from(items.iter().map(from_plugin).collect::<Vec<_>>()),
        other => super::to_value(other),
    }
}

/// `__plugin_filter` and `__plugin_test`, and the lookup fallback.
pub fn register(env: &mut Environment<'static>) {
    env.add_filter("__plugin_filter", |value: Value, name: String, args: Rest<Value>, kw: Kwargs| call("filter", &value, &name, &args, &kw));
    env.add_test("__plugin_test", |value: Value, name: String, args: Rest<Value>, kw: Kwargs| -> Result<bool, Error> { Ok(call("test", &value, &name, &args, &kw)?.is_true()) });
}

/// A lookup recover does not build in, when the installed ansible-core has it: its list.
pub fn lookup(name: &str, terms: &[Value], kw: &Kwargs) -> Option<Result<Vec<Value>, Error>> {
    if !collection_name(name) && !crate::pyansible::has_plugin("lookup", name) {
        return None;
    }
    Some(call("lookup", &Value::from(()), name, terms, kw).map(|v| v.try_iter().map(|i| i.collect()).unwrap_or_else(|_| vec![v])))
}
