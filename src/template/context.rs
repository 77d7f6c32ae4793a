//! The variables a template sees, resolved lazily as Ansible does: a variable
//! whose value is itself a template (`url: "http://{{ vip }}:{{ port }}"`) is
//! rendered when it is first read, with the same variables, and cached.
//! A loop (`a: "{{ b }}"`, `b: "{{ a }}"`) is an error, not a hang.
//!
//! Some variables are data, never templates: what a host answered (registered results, facts
//! set from them, loop items). Ansible marks these "unsafe"; here the context is told their names,
//! and a `{{` in a command's output stays two characters instead of running as Jinja2.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use indexmap::IndexMap;
use minijinja::value::{Enumerator, Object, Value};
use minijinja::{Error, ErrorKind};
use serde_json::Value as Json;

use super::Templates;

/// Variables by name, with their raw (unrendered) values.
pub type Vars = IndexMap<String, Json>;

/// Names a context serves besides its raw variables: magic variables that win over them
/// (`hostvars`, `groups`), and values under them (a host's gathered facts). A variable's own
/// template sees them too (`workers: "{{ ansible_processor_vcpus }}"` in role defaults).
pub trait Outer: Send + Sync + std::fmt::Debug {
    /// A value that wins over a raw variable of the same name.
    fn first(&self, key: &str) -> Option<Value>;
    /// A value for a name the raw variables lack.
    fn last(&self, key: &str) -> Option<Value>;
    /// Every name it serves.
    fn keys(&self) -> Vec<Value>;
}

/// A template context over raw variables; see the module doc.
pub struct Context {
    raw: Vars,
    /// Names whose values are data: read as they are, never rendered.
    data: HashSet<String>,
    templates: Templates,
    cache: Mutex<HashMap<String, Value>>,
    in_progress: Mutex<Vec<String>>,
    outer: Option<Arc<dyn Outer>>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").field("vars", &self.raw.len()).finish()
    }
}

impl Context {
    /// Wraps `raw` variables as a template context value.
    pub fn new_value(raw: Vars, data: HashSet<String>, templates: &Templates) -> Value {
        Context::with_outer(raw, data, templates, None)
    }

    /// [`new_value`](Self::new_value) with the names `outer` serves around the raw variables.
    pub fn with_outer(raw: Vars, data: HashSet<String>, templates: &Templates, outer: Option<Arc<dyn Outer>>) -> Value {
        Value::from_object(Context {
            raw,
            data,
            templates: templates.clone(),
            cache: Mutex::new(HashMap::new()),
            in_progress: Mutex::new(Vec::new()),
            outer,
        })
    }

    fn resolve(self: &Arc<Self>, key: &str) -> Option<Value> {
        if let Some(v) = self.cache.lock().ok()?.get(key) {
            return Some(v.clone());
        }
        let raw = self.raw.get(key)?;
        if self.data.contains(key) {
            return Some(crate::template::to_value(crate::template::strip_unsafe(raw).as_ref()));
        }
        {
            let mut stack = self.in_progress.lock().ok()?;
            if stack.iter().any(|k| k == key) {
                let chain = format!("{} -> {key}", stack.join(" -> "));
                return Some(Value::from(Error::new(
                    ErrorKind::InvalidOperation,
                    format!("recursive loop detected in variable '{key}' ({chain})"),
                )));
            }
            stack.push(key.to_string());
        }
        let ctx = Value::from_dyn_object(self.clone());
        let result = self.templates.render_json(raw, &ctx);
        if let Ok(mut stack) = self.in_progress.lock() {
            stack.retain(|k| k != key);
        }
        let value = match result {
            Ok(v) => crate::template::to_value(&v),
            Err(e) => Value::from(Error::new(ErrorKind::InvalidOperation, format!("in variable '{key}': {e}"))),
        };
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(key.to_string(), value.clone());
        }
        Some(value)
    }
}

impl Context {
    fn lookup(self: &Arc<Self>, key: &str) -> Option<Value> {
        if let Some(v) = self.outer.as_ref().and_then(|o| o.first(key)) {
            return Some(v);
        }
        match self.resolve(key) {
            Some(v) if !v.is_undefined() => Some(v),
            _ => self.outer.as_ref().and_then(|o| o.last(key)).filter(|v| !v.is_undefined()),
        }
    }
}

impl Object for Context {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let v = self.lookup(key.as_str()?);
        // A template that reads a secret makes one (see `crate::secrets`).
        if let Some(v) = &v {
            if crate::secrets::value_holds(v) {
                crate::secrets::touched();
            }
        }
        v
    }
    fn enumerate(self: &Arc<Self>) -> Enumerator {
        let mut keys: Vec<Value> = self.raw.keys().map(|k| Value::from(k.as_str())).collect();
        if let Some(o) = &self.outer {
            let have: HashSet<&str> = self.raw.keys().map(String::as_str).collect();
            keys.extend(o.keys().into_iter().filter(|k| k.as_str().is_none_or(|k| !have.contains(k))));
        }
        Enumerator::Values(keys)
    }
}
