//! One Jinja2 environment for the whole tool (minijinja), configured as
//! Ansible configures Jinja2: `trim_blocks`, trailing newline kept, strict
//! undefined, no HTML escaping, values printed as Python prints them, and the
//! Ansible filters (see [`filters`]).
//!
//! Two ways to render a string:
//! - [`Templates::render_str`] for data (file content, arguments, messages);
//! - [`Templates::render_shell`] for `shell` command strings: every `{{ value }}`
//!   is shell-quoted on output, so a variable holding `; rm -rf /` stays data.
//!   `{{ value | safe }}` inserts shell code deliberately.

pub mod context;
mod pymod;
pub mod filters;
mod globals;
pub mod text;
pub mod pyjson;
pub mod pyrepr;
pub mod pyrandom;
pub mod lookups;
pub mod more;
mod names;
pub mod plugins;
mod render;
pub(crate) use render::folder_loader;
pub mod rest;
pub mod version;
pub mod words;
pub mod yamlout;

use std::sync::Arc;

use minijinja::value::{Value, ValueKind};
use minijinja::{AutoEscape, Environment, Error, ErrorKind, UndefinedBehavior};
use serde_json::Value as Json;

use crate::error::{SourceError, Span};

pub use context::{Context, Vars};

const SHELL_TEMPLATE: &str = "<shell>";

thread_local! {
    /// What the template file being rendered printed: see [`NativeWatch`].
    static NATIVE: std::cell::RefCell<Option<NativeWatch>> = const { std::cell::RefCell::new(None) };
}

/// ansible-core 2.19 renders a template file natively: when its output is exactly one printed
/// value and no text around it (tags that print nothing, like `{% set %}` or a `{% for %}` that
/// only assigns, do not count), the result is that value, not a string, and it is written
/// without the source's trailing newline. The formatter records each value it prints while a
/// watch is on; renders nested inside (a variable that is itself a template) pause it.
#[derive(Default)]
pub(crate) struct NativeWatch {
    printed: usize,
    bytes: usize,
    first: Option<Value>,
}

impl NativeWatch {
    fn start() {
        NATIVE.with(|n| *n.borrow_mut() = Some(NativeWatch::default()));
    }
    /// The native text of the render whose whole output is `out`, if it is native.
    fn finish(out: &str) -> Option<String> {
        let w = NATIVE.with(|n| n.borrow_mut().take())?;
        let v = w.first.filter(|_| w.printed == 1 && w.bytes == out.len())?;
        match v.kind() {
            ValueKind::String | ValueKind::Undefined | ValueKind::Invalid => None,
            ValueKind::None => Some(String::new()),
            _ => Some(out.to_string()),
        }
    }
    /// Pauses the watch for the life of the guard (a nested render).
    pub(crate) fn pause() -> NativePause {
        NativePause(NATIVE.with(|n| n.borrow_mut().take()))
    }
}

pub(crate) struct NativePause(Option<NativeWatch>);

impl Drop for NativePause {
    fn drop(&mut self) {
        if let Some(w) = self.0.take() {
            NATIVE.with(|n| *n.borrow_mut() = Some(w));
        }
    }
}

/// Ansible's `omit` placeholder: an argument rendered to this is dropped.
pub const OMIT: &str = "__omit_place_holder__recover";

/// A shared, configured template environment. Cheap to clone.
#[derive(Clone)]
pub struct Templates {
    env: Arc<Environment<'static>>,
}

impl Default for Templates {
    fn default() -> Self {
        Self::new()
    }
}

impl Templates {
    pub fn new() -> Templates {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // Jinja2's default drops one trailing newline of the source; see `trailing_newlines`.
        if let Ok(syntax) = minijinja::syntax::SyntaxConfig::builder().trim_blocks(true).keep_trailing_newline(false).build() {
            env.set_syntax(syntax);
        }
        // Bound the work a hostile template can make us do.
        env.set_fuel(Some(50_000_000));
        env.set_recursion_limit(200);
        env.set_auto_escape_callback(|name| if name == SHELL_TEMPLATE { AutoEscape::Custom("shell".into()) } else { AutoEscape::None });
        env.set_formatter(|out, state, value| {
            if value.kind() == ValueKind::Invalid {
                let text = value.to_string();
                let text = text.strip_prefix("<invalid value: ").and_then(|t| t.strip_suffix('>')).unwrap_or(&text);
                return Err(Error::new(ErrorKind::InvalidOperation, text.to_string()));
            }
            let text = pyrepr::py_str(value);
            NATIVE.with(|n| {
                if let Some(w) = n.borrow_mut().as_mut() {
                    w.printed += 1;
                    w.bytes += text.len();
                    if w.first.is_none() {
                        w.first = Some(value.clone());
                    }
                }
            });
            let text = if *state.auto_escape() == AutoEscape::Custom("shell".into()) && !value.is_safe() {
                crate::transport::quote::quote(&text)
            } else {
                text
            };
            out.write_str(&text).map_err(|_| Error::new(ErrorKind::WriteFailure, "write failed"))
        });
        minijinja_contrib::add_to_environment(&mut env);
        env.set_unknown_method_callback(|state, value, method, args| {
            // Python's list methods minijinja's pycompat lacks: `index` and `count`.
            if value.kind() == ValueKind::Seq && matches!(method, "index" | "count") {
                let x = args.first().cloned().unwrap_or_default();
                let items: Vec<Value> = value.try_iter()?.collect();
                return match method {
                    "count" => Ok(Value::from(items.iter().filter(|i| **i == x).count())),
                    _ => items.iter().position(|i| *i == x).map(Value::from).ok_or_else(|| Error::new(ErrorKind::InvalidOperation, format!("{} is not in list", crate::template::pyrepr::py_repr(&x)))),
                };
            }
            minijinja_contrib::pycompat::unknown_method_callback(state, value, method, args)
        });
        env.add_global("omit", OMIT);
        filters::register(&mut env);
        plugins::register(&mut env);
        more::register(&mut env);
        rest::register(&mut env);
        Templates { env: Arc::new(env) }
    }

    /// Builds a context value over raw variables (resolved lazily), with
    /// Ansible's defaults (`ansible_managed`) under them.
    pub fn context(&self, vars: Vars) -> Value {
        self.context_with_data(vars, Default::default())
    }

    /// Like [`context`](Self::context); the variables named in `data` are read as they are,
    /// never rendered (what a host answered: a `{{` in it is text, not a template).
    pub fn context_with_data(&self, vars: Vars, data: std::collections::HashSet<String>) -> Value {
        self.context_with_outer(vars, data, None)
    }

    /// [`context_with_data`](Self::context_with_data) with names served around the variables
    /// (magic variables, facts): see [`context::Outer`].
    pub fn context_with_outer(&self, vars: Vars, data: std::collections::HashSet<String>, outer: Option<std::sync::Arc<dyn context::Outer>>) -> Value {
        let mut all = defaults();
        all.extend(vars);
        Context::with_outer(all, data, self, outer)
    }
}

/// Jinja2's `{% raw %}` keeps the newline after its tag under `trim_blocks` (only `{% endraw %}`
/// drops the one after it); minijinja drops both. A raw tag ending in a plain `%}` is written
/// `+%}` (keep the whitespace), which gives Jinja2's output.
///
/// It also gives ansible-core's full names of the builtin filters and tests their short ones
/// (see [`builtin_names`]).
pub(crate) fn raw_as_jinja2(src: &str) -> std::borrow::Cow<'_, str> {
    use std::sync::OnceLock;
    static RAW: OnceLock<regex::Regex> = OnceLock::new();
    let src = match builtin_names(src) {
        std::borrow::Cow::Borrowed(b) => pymod::rewrite(b, false),
        std::borrow::Cow::Owned(o) => std::borrow::Cow::Owned(pymod::rewrite(&o, false).into_owned()),
    };
    let src = match plugins::rewrite(&src) {
        std::borrow::Cow::Borrowed(_) => src,
        std::borrow::Cow::Owned(o) => std::borrow::Cow::Owned(o),
    };
    if !src.contains("raw") {
        return src;
    }
    let re = RAW.get_or_init(|| regex::Regex::new(r"\{%([-+]?)(\s*)raw(\s*)%\}").expect("static regex"));
    match re.replace_all(&src, "{%${1}${2}raw${3}+%}") {
        std::borrow::Cow::Borrowed(_) => src,
        std::borrow::Cow::Owned(o) => std::borrow::Cow::Owned(o),
    }
}

/// `| ansible.builtin.combine(...)`, `is ansible.builtin.version(...)` (and `ansible.legacy.`):
/// the builtin filter or test by its short name, as ansible-core resolves it.
fn builtin_names(src: &str) -> std::borrow::Cow<'_, str> {
    use std::sync::OnceLock;
    static FQ: OnceLock<regex::Regex> = OnceLock::new();
    if !src.contains("ansible.") {
        return std::borrow::Cow::Borrowed(src);
    }
    let re = FQ.get_or_init(|| regex::Regex::new(r"(\|\s*|\bis\s+(?:not\s+)?)ansible\.(?:builtin|legacy)\.([A-Za-z_])").expect("static regex"));
    re.replace_all(src, "${1}${2}")
}

/// Ansible's rule for trailing newlines: after Jinja2 dropped one of the
/// source's, the output gets newlines back up to the source's count.
pub(crate) fn trailing_newlines(src: &str, mut out: String) -> String {
    let count = |s: &str| s.len() - s.trim_end_matches('\n').len();
    let (want, have) = (count(src), count(&out));
    if want > have {
        out.push_str(&"\n".repeat(want - have));
    }
    out
}

/// Variables Ansible defines for every template, at the lowest precedence.
pub fn defaults() -> Vars {
    let mut v = Vars::new();
    v.insert("ansible_managed".into(), Json::String("Ansible managed".into()));
    v
}

/// A template file being rendered: its `src` as the task wrote it, where it was found, and the
/// `dest` it will be written to.
pub struct TemplateFile<'a> {
    pub src: &'a str,
    pub path: &'a std::path::Path,
    pub dest: Option<&'a str>,
}

impl TemplateFile<'_> {
    /// Ansible's `template_path`, `template_fullpath`, `template_destpath`, `template_host`,
    /// `template_uid`, `template_mtime` and `template_run_date`.
    pub fn vars(&self) -> Json {
        use std::os::unix::fs::MetadataExt;
        let full = std::path::absolute(self.path).unwrap_or_else(|_| self.path.to_path_buf());
        let meta = std::fs::metadata(self.path).ok();
        let uid = meta.as_ref().map(|m| m.uid());
        let owner = uid.and_then(user_name).or_else(|| uid.map(|u| u.to_string())).unwrap_or_default();
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_default();
        let mtime = meta.and_then(|m| m.modified().ok()).map(|t| py_datetime(chrono::DateTime::<chrono::Local>::from(t)));
        serde_json::json!({
            "template_path": self.src,
            "template_fullpath": full.display().to_string(),
            "template_destpath": self.dest,
            "template_host": host,
            "template_uid": owner,
            "template_mtime": mtime,
            "template_run_date": py_datetime(chrono::Local::now()),
        })
    }
}

/// Python's `str(datetime)`: `2026-12-01 23:29:29.123456`.
fn py_datetime(t: chrono::DateTime<chrono::Local>) -> String {
    let micros = t.timestamp_subsec_micros();
    if micros == 0 {
        t.format("%Y-%m-%d %H:%M:%S").to_string()
    } else {
        format!("{}.{micros:06}", t.format("%Y-%m-%d %H:%M:%S"))
    }
}

/// The user name of `uid`, from /etc/passwd.
fn user_name(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() > 2 && f[2] == uid.to_string()).then(|| f[0].to_string())
    })
}

pub use crate::yaml::{as_unsafe, as_vault, unsafe_text, vault_text, UNSAFE_KEY, VAULT_KEY};

/// Decrypts a `!vault` value as it is used; the error is ansible-core's when no password fits.
pub fn decrypt_vault(ciphertext: &str) -> Result<String, Error> {
    let plain = crate::vault::decrypt(ciphertext).map_err(|e| Error::new(ErrorKind::InvalidOperation, format!("Attempting to decrypt a `!vault` value: {e}")))?;
    String::from_utf8(plain).map_err(|_| Error::new(ErrorKind::InvalidOperation, "a `!vault` value's plaintext is not UTF-8"))
}

/// The value with every unsafe mark replaced by its plain text (what a template sees).
pub fn strip_unsafe(v: &Json) -> std::borrow::Cow<'_, Json> {
    fn has(v: &Json) -> bool {
        match v {
            Json::Object(m) => as_unsafe(v).is_some() || as_vault(v).is_some() || m.values().any(has),
            Json::Array(a) => a.iter().any(has),
            _ => false,
        }
    }
    fn strip(v: &Json) -> Json {
        if let Some(s) = as_unsafe(v) {
            return Json::String(s.to_string());
        }
        if let Some(c) = as_vault(v) {
            return match decrypt_vault(c) {
                Ok(p) => Json::String(p),
                Err(_) => v.clone(),
            };
        }
        match v {
            Json::Object(m) => Json::Object(m.iter().map(|(k, v)| (k.clone(), strip(v))).collect()),
            Json::Array(a) => Json::Array(a.iter().map(strip).collect()),
            other => other.clone(),
        }
    }
    if has(v) {
        std::borrow::Cow::Owned(strip(v))
    } else {
        std::borrow::Cow::Borrowed(v)
    }
}

/// Does the text contain template syntax?
pub fn is_template(s: &str) -> bool {
    s.contains("{{") || s.contains("{%") || s.contains("{#")
}

/// `"{{ expr }}"` (and nothing else, not even whitespace around it) -> `Some("expr")`.
fn single_expression(s: &str) -> Option<&str> {
    let inner = s.strip_prefix("{{")?.strip_suffix("}}")?;
    // The expression ends at the first delimiter outside its strings and brackets: one before
    // the last means it is not the whole text (`{{ {'b': {'d': 3}} }}` is one expression).
    first_outside(inner, &["}}", "%}", "#}", "{{", "{%", "{#"]).is_none().then_some(inner)
}

/// Where the code of a `{{ ... }}` or `{% ... %}` ends (the offset of its `close`), past the
/// braces of dict literals and the text of strings inside it.
pub(crate) fn code_end(code: &str, close: &str) -> Option<usize> {
    first_outside(code, &[close])
}

/// The offset of the first of `delims` in template code that is outside its strings and
/// outside its brackets (`()`, `[]`, a dict's `{}`).
fn first_outside(code: &str, delims: &[&str]) -> Option<usize> {
    let b = code.as_bytes();
    let (mut depth, mut quote, mut i) = (0usize, None::<u8>, 0);
    while i < b.len() {
        let c = b[i];
        match quote {
            Some(_) if c == b'\\' => i += 1,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == b'\'' || c == b'"' => quote = Some(c),
            None if depth == 0 && delims.iter().any(|d| code[i..].starts_with(d)) => return Some(i),
            None if c == b'{' || c == b'[' || c == b'(' => depth += 1,
            None if c == b'}' || c == b']' || c == b')' => depth = depth.saturating_sub(1),
            None => {}
        }
        i += 1;
    }
    None
}

/// Plain data as a template value.
pub fn to_value<T: serde::Serialize>(v: T) -> Value {
    Value::from(minijinja::value::Serde(v))
}

/// A template value as plain data.
pub fn json_of(v: &Value) -> Result<Json, Error> {
    if v.kind() == ValueKind::Invalid {
        return Err(Error::new(ErrorKind::InvalidOperation, v.to_string()));
    }
    if v.is_undefined() {
        return Err(Error::new(ErrorKind::UndefinedError, "value is undefined"));
    }
    serde_json::to_value(v).map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))
}

/// `` `a.b` is undefined `` (or `a['b']`): the value `a` is defined and has no attribute `b`
/// (an undefined `a` is reported by its own name).
fn missing_attribute(detail: &str) -> Option<(&str, &str)> {
    let expr = detail.strip_prefix('`')?.strip_suffix("` is undefined")?;
    if let Some(inner) = expr.strip_suffix(']') {
        let open = inner.rfind('[')?;
        let key = inner[open + 1..].trim();
        let key = key.strip_prefix(['\'', '"'])?.strip_suffix(['\'', '"'])?;
        return Some((&inner[..open], key));
    }
    let dot = expr.rfind('.')?;
    let (parent, attr) = (&expr[..dot], &expr[dot + 1..]);
    (!parent.is_empty() && !attr.is_empty() && attr.chars().all(|c| c.is_alphanumeric() || c == '_')).then_some((parent, attr))
}

/// Turns a template error into a located input error. The template's own
/// line (for multi-line text) is added to the origin's line.
pub fn located(e: &Error, origin: &Span) -> SourceError {
    let mut msg = match e.kind() {
        ErrorKind::UndefinedError => {
            let detail = e.detail().unwrap_or("a value is undefined");
            match missing_attribute(detail) {
                // As ansible-core's message says it (roles test for "has no attribute 'x'").
                Some((parent, attr)) => format!("undefined variable: {detail} (`{parent}` has no attribute '{attr}')"),
                None => format!("undefined variable: {detail}"),
            }
        }
        _ => e.detail().map(|d| format!("{}: {d}", e.kind())).unwrap_or_else(|| e.kind().to_string()),
    };
    if let Some(src) = e.template_source() {
        if let Some(range) = e.range() {
            if let Some(snippet) = src.get(range) {
                msg.push_str(&format!(" (in `{snippet}`)"));
            }
        }
    }
    // An error inside an included or imported template: say what and where, too.
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        if let Some(inner) = c.downcast_ref::<Error>() {
            let what = inner.detail().map(|d| format!("{}: {d}", inner.kind())).unwrap_or_else(|| inner.kind().to_string());
            match (inner.name(), inner.line()) {
                (Some(name), Some(line)) => msg.push_str(&format!("; {name}:{line}: {what}")),
                _ => msg.push_str(&format!("; {what}")),
            }
        }
        cause = c.source();
    }
    let mut span = origin.clone();
    if let Some(line) = e.line() {
        if line > 1 {
            span = origin.offset_lines(line - 1);
        }
    }
    SourceError::new(span, msg)
}

#[cfg(test)]
mod tests;

/// Every string inside `v`.
fn collect_strings<'a>(v: &'a Json, out: &mut Vec<&'a str>) {
    match v {
        Json::String(s) => out.push(s),
        Json::Array(a) => a.iter().for_each(|x| collect_strings(x, out)),
        Json::Object(m) => m.values().for_each(|x| collect_strings(x, out)),
        _ => {}
    }
}

/// The most items a filter or lookup may build (`product`, `permutations`, `combinations`,
/// `with_sequence`, `with_nested` ...): past it the template fails with an error naming the
/// template's place, instead of the run spending gigabytes and minutes on it.
pub const MAX_BUILT_ITEMS: u128 = 1_000_000;

/// `Err` when `what` would build `n` items, more than [`MAX_BUILT_ITEMS`].
pub fn bounded(n: u128, what: &str) -> Result<(), Error> {
    if n > MAX_BUILT_ITEMS {
        return Err(Error::new(ErrorKind::InvalidOperation, format!("{what} would build {} items, more than recover's limit of {MAX_BUILT_ITEMS}", if n == u128::MAX { "too many".to_string() } else { n.to_string() })));
    }
    Ok(())
}
