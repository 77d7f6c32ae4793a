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
pub mod pyjson;
pub mod pyrepr;
pub mod pyrandom;
pub mod lookups;
pub mod more;
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
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_global("omit", OMIT);
        filters::register(&mut env);
        more::register(&mut env);
        rest::register(&mut env);
        Templates { env: Arc::new(env) }
    }

    /// Renders template text with `ctx`. Errors name `origin` (where the text came from).
    /// Whatever a render makes from a secret is a secret too (see [`crate::secrets`]).
    pub fn render_str(&self, src: &str, ctx: &Value, origin: &Span) -> Result<String, SourceError> {
        let taint = crate::secrets::Taint::begin();
        let src = &*raw_as_jinja2(src);
        let out = self.env.render_str(src, ctx).map_err(|e| located(&e, origin));
        let out = out.map(|o| trailing_newlines(src, o));
        taint.end(&[out.as_deref().unwrap_or_default()]);
        out
    }

    /// Renders a template file as Ansible's `template` module does: a first line
    /// `#jinja2: key: value, ...` is removed and overrides the environment for this file
    /// (trim_blocks, lstrip_blocks, keep_trailing_newline, newline_sequence and the
    /// delimiters); errors name `origin`.
    pub fn render_file(&self, src: &str, ctx: &Value, origin: &Span) -> Result<String, SourceError> {
        let taint = crate::secrets::Taint::begin();
        let out = self.render_file_inner(src, ctx, origin);
        taint.end(&[out.as_deref().unwrap_or_default()]);
        out
    }

    fn render_file_inner(&self, src: &str, ctx: &Value, origin: &Span) -> Result<String, SourceError> {
        let src = &*raw_as_jinja2(src);
        let Some(rest) = src.strip_prefix("#jinja2:") else {
            NativeWatch::start();
            let out = self.env.render_str(src, ctx);
            let native = NativeWatch::finish(out.as_deref().unwrap_or_default());
            let out = out.map_err(|e| located(&e, origin))?;
            return Ok(native.unwrap_or_else(|| trailing_newlines(src, out)));
        };
        let eol = rest.find('\n').ok_or_else(|| SourceError::new(origin.clone(), "missing newline after the '#jinja2:' override"))?;
        let (line, body) = (&rest[..eol], &rest[eol + 1..]);
        // The environment's own syntax (see `new`): Ansible's trim_blocks, Jinja2's delimiters.
        let mut b = minijinja::syntax::SyntaxConfig::builder();
        b.trim_blocks(true);
        let (mut block, mut var, mut comment) = (("{%".to_string(), "%}".to_string()), ("{{".to_string(), "}}".to_string()), ("{#".to_string(), "#}".to_string()));
        let mut keep_trailing = false;
        let mut newline: Option<String> = None;
        for pair in line.split(',') {
            if pair.trim().is_empty() {
                return Err(SourceError::new(origin.clone(), "empty '#jinja2:' override pair"));
            }
            let (k, v) = pair.split_once(':').ok_or_else(|| SourceError::new(origin.clone(), format!("missing ':' in the '#jinja2:' override pair {pair:?}")))?;
            let (k, v) = (k.trim(), v.trim());
            let as_bool = || match v {
                "True" => Ok(true),
                "False" => Ok(false),
                other => Err(SourceError::new(origin.clone(), format!("'#jinja2:' {k} takes True or False, not {other}"))),
            };
            let as_str = || -> Result<String, SourceError> {
                let q = v.chars().next().filter(|c| *c == '\'' || *c == '"');
                match q {
                    Some(c) if v.len() >= 2 && v.ends_with(c) => Ok(v[1..v.len() - 1].replace("\\n", "\n").replace("\\r", "\r")),
                    _ => Err(SourceError::new(origin.clone(), format!("'#jinja2:' {k} takes a quoted string, not {v}"))),
                }
            };
            match k {
                "trim_blocks" => {
                    b.trim_blocks(as_bool()?);
                }
                "lstrip_blocks" => {
                    b.lstrip_blocks(as_bool()?);
                }
                "keep_trailing_newline" => keep_trailing = as_bool()?,
                "newline_sequence" => newline = Some(as_str()?),
                "block_start_string" => block.0 = as_str()?,
                "block_end_string" => block.1 = as_str()?,
                "variable_start_string" => var.0 = as_str()?,
                "variable_end_string" => var.1 = as_str()?,
                "comment_start_string" => comment.0 = as_str()?,
                "comment_end_string" => comment.1 = as_str()?,
                "line_statement_prefix" => {
                    b.line_statement_prefix(as_str()?);
                }
                "line_comment_prefix" => {
                    b.line_comment_prefix(as_str()?);
                }
                other => return Err(SourceError::new(origin.clone(), format!("invalid '#jinja2:' override key {other:?}"))),
            }
        }
        b.block_delimiters(block.0, block.1).variable_delimiters(var.0, var.1).comment_delimiters(comment.0, comment.1);
        b.keep_trailing_newline(keep_trailing);
        let syntax = b.build().map_err(|e| located(&e, origin))?;
        let mut env = (*self.env).clone();
        env.set_syntax(syntax);
        NativeWatch::start();
        let out = env.render_str(body, ctx);
        let native = NativeWatch::finish(out.as_deref().unwrap_or_default());
        let mut out = out.map_err(|e| located(&e, origin))?;
        if let Some(n) = native {
            out = n;
        } else if !keep_trailing {
            out = trailing_newlines(body, out);
        }
        if let Some(nl) = newline.filter(|n| n != "\n") {
            out = out.replace('\n', &nl);
        }
        Ok(out)
    }

    /// Renders a template file as the `template` module does (see [`render_file`](Self::render_file)),
    /// with Ansible's `template_*` variables for `file` and `{% include %}`, `{% import %}`,
    /// `{% from %}` and `{% extends %}` looking in the template's own folder, then `search` (the
    /// role's `templates/` and folder, the playbook's `templates/` and folder).
    pub fn render_template(&self, src: &str, ctx: &Value, file: &TemplateFile<'_>, search: &[std::path::PathBuf]) -> Result<String, SourceError> {
        let origin = Span { line: 1, col: 1, ..Span::file(file.path) };
        let ctx = minijinja::value::merge_maps([to_value(file.vars()), ctx.clone()]);
        if !(src.contains("include") || src.contains("import") || src.contains("extends")) {
            return self.render_file(src, &ctx, &origin);
        }
        let mut dirs: Vec<std::path::PathBuf> = file.path.parent().map(|p| vec![p.to_path_buf()]).unwrap_or_default();
        dirs.extend(search.iter().cloned());
        let mut env = (*self.env).clone();
        env.set_loader(move |name| {
            // As Jinja2's FileSystemLoader: a name is a relative path without `..`.
            if name.split('/').any(|part| part == "..") || name.starts_with('/') {
                return Ok(None);
            }
            for d in &dirs {
                let p = d.join(name);
                if p.is_file() {
                    let bytes = crate::vault::read_file(&p).map_err(|e| Error::new(ErrorKind::InvalidOperation, format!("{}: {e}", p.display())))?;
                    let text = String::from_utf8(bytes).map_err(|_| Error::new(ErrorKind::InvalidOperation, format!("{} is not UTF-8 text", p.display())))?;
                    return Ok(Some(raw_as_jinja2(&text).into_owned()));
                }
            }
            Ok(None)
        });
        Templates { env: Arc::new(env) }.render_file(src, &ctx, &origin)
    }

    /// Renders a `shell` command string: printed values are shell-quoted (see module doc).
    pub fn render_shell(&self, src: &str, ctx: &Value, origin: &Span) -> Result<String, SourceError> {
        let src = &*raw_as_jinja2(src);
        let tmpl = self.env.template_from_named_str(SHELL_TEMPLATE, src).map_err(|e| located(&e, origin))?;
        let taint = crate::secrets::Taint::begin();
        let out = tmpl.render(ctx).map_err(|e| located(&e, origin));
        taint.end(&[out.as_deref().unwrap_or_default()]);
        let out = out?;
        if out.contains('\0') {
            return Err(SourceError::new(origin.clone(), "a value in this command holds a NUL byte, which no shell command can carry"));
        }
        Ok(trailing_newlines(src, out))
    }

    /// Renders a `command:` string as an argv: the source is split into words first
    /// ([`words::split`]) and each word rendered on its own, so one word is one argument.
    pub fn render_words(&self, src: &str, ctx: &Value, origin: &Span) -> Result<Vec<String>, SourceError> {
        // The whole command in one variable (`command: "{{ nginx_test_command }}"`): that value
        // is the command line by intent, and is split into words as Ansible splits it.
        if single_expression(src.trim()).is_some() {
            let line = self.render_str(src.trim(), ctx, origin)?;
            if line.contains('\0') {
                return Err(SourceError::new(origin.clone(), "a value in this command holds a NUL byte, which no argument can carry"));
            }
            return shell_words::split(&line).map_err(|e| SourceError::new(origin.clone(), format!("command: cannot split {line:?} into words: {e}")));
        }
        let words = words::split(src).map_err(|e| SourceError::new(origin.clone(), format!("command: {e}")))?;
        let mut out = Vec::with_capacity(words.len());
        for w in &words {
            let r = if is_template(w) { self.render_str(w, ctx, origin)? } else { w.clone() };
            if r.contains('\0') {
                return Err(SourceError::new(origin.clone(), "a value in this command holds a NUL byte, which no argument can carry"));
            }
            out.push(r);
        }
        Ok(out)
    }

    /// Evaluates a bare Jinja2 expression (`when:`, `that:`, `failed_when:`).
    pub fn eval(&self, expr: &str, ctx: &Value) -> Result<Value, Error> {
        let expr = expr.trim();
        // Ansible tolerates (and warns about) `when: "{{ x }}"`.
        let expr = expr.strip_prefix("{{").and_then(|e| e.strip_suffix("}}")).unwrap_or(expr);
        let expr = builtin_names(expr);
        let expr = pymod::rewrite(&expr, true);
        let compiled = self.env.compile_expression(&expr)?;
        let v = compiled.eval(ctx)?;
        if v.kind() == ValueKind::Invalid {
            return Err(Error::new(ErrorKind::InvalidOperation, v.to_string()));
        }
        Ok(v)
    }

    /// A condition's truth, as Ansible judges it (strings `"false"`, `"no"` are false).
    pub fn eval_bool(&self, expr: &str, ctx: &Value, origin: &Span) -> Result<bool, SourceError> {
        let v = self.eval(expr, ctx).map_err(|e| located(&e, origin))?;
        Ok(match v.as_str() {
            Some(s) => !matches!(s.trim().to_lowercase().as_str(), "" | "false" | "no" | "off" | "0"),
            None => v.is_true(),
        })
    }

    /// Renders every string inside `raw` (recursively). A string that is one
    /// `{{ expression }}` keeps the expression's type (list, dict, number), as
    /// Ansible does for module arguments and variables.
    pub fn render_json(&self, raw: &Json, ctx: &Value) -> Result<Json, Error> {
        let taint = crate::secrets::Taint::begin();
        let out = self.render_json_inner(raw, ctx);
        if let Ok(v) = &out {
            let mut strings = Vec::new();
            collect_strings(v, &mut strings);
            taint.end(&strings);
        } else {
            taint.end(&[]);
        }
        out
    }

    fn render_json_inner(&self, raw: &Json, ctx: &Value) -> Result<Json, Error> {
        let _pause = NativeWatch::pause();
        match raw {
            Json::String(s) if is_template(s) => {
                if let Some(expr) = single_expression(s) {
                    let v = self.eval(expr, ctx)?;
                    if v.is_undefined() {
                        return Err(Error::new(ErrorKind::UndefinedError, format!("'{}' is undefined", expr.trim())));
                    }
                    return json_of(&v);
                }
                Ok(Json::String(trailing_newlines(s, self.env.render_str(&raw_as_jinja2(s), ctx)?)))
            }
            Json::Array(items) => items.iter().map(|i| self.render_json_inner(i, ctx)).collect::<Result<Vec<_>, _>>().map(Json::Array),
            Json::Object(_) if as_unsafe(raw).is_some() => Ok(Json::String(as_unsafe(raw).unwrap_or_default().to_string())),
            Json::Object(_) if as_vault(raw).is_some() => decrypt_vault(as_vault(raw).unwrap_or_default()).map(Json::String),
            Json::Object(map) => {
                let mut out = serde_json::Map::new();
                for (k, v) in map {
                    out.insert(k.clone(), self.render_json_inner(v, ctx)?);
                }
                Ok(Json::Object(out))
            }
            other => Ok(other.clone()),
        }
    }

    /// Like [`render_json`](Self::render_json), with errors located at `origin`.
    pub fn render_value(&self, raw: &Json, ctx: &Value, origin: &Span) -> Result<Json, SourceError> {
        self.render_json(raw, ctx).map_err(|e| located(&e, origin))
    }

    /// The variables a template reads without setting them itself (for load-time checks).
    /// Filters, tests and lookups `src` uses that this environment does not have:
    /// (kind, name) pairs, for load-time errors. String literals are not looked into.
    pub fn unknown_names(&self, src: &str) -> Vec<(&'static str, String)> {
        use std::sync::OnceLock;
        static RE: OnceLock<[regex::Regex; 4]> = OnceLock::new();
        let [strings, filter, test, lookup] = RE.get_or_init(|| {
            [
                regex::Regex::new(r#"'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*""#).expect("static regex"),
                regex::Regex::new(r"\|\s*([A-Za-z_][A-Za-z0-9_.]*)").expect("static regex"),
                regex::Regex::new(r"\bis\s+(?:not\s+)?([A-Za-z_][A-Za-z0-9_.]*)").expect("static regex"),
                regex::Regex::new(r#"\b(?:lookup|query|q)\(\s*['"]([A-Za-z0-9_.]+)['"]"#).expect("static regex"),
            ]
        });
        let mut out = Vec::new();
        // Only the code inside {{ }} and {% %}.
        let mut code = String::new();
        let mut rest = src;
        while let Some(open) = rest.find(['{']) {
            let after = &rest[open..];
            let close = if after.starts_with("{{") { "}}" } else if after.starts_with("{%") { "%}" } else {
                rest = &rest[open + 1..];
                continue;
            };
            let Some(end) = after[2..].find(close) else { break };
            code.push_str(&after[2..2 + end]);
            code.push('\n');
            rest = &after[2 + end + 2..];
        }
        for c in lookup.captures_iter(&code) {
            let name = c[1].trim_start_matches("ansible.builtin.").trim_start_matches("ansible.legacy.").to_string();
            if !filters::LOOKUPS.contains(&name.as_str()) {
                out.push(("lookup", c[1].to_string()));
            }
        }
        let code = strings.replace_all(&code, "''");
        for c in filter.captures_iter(&code) {
            let name = &c[1];
            if !self.has("filter", name) {
                out.push(("filter", name.to_string()));
            }
        }
        for c in test.captures_iter(&code) {
            let name = &c[1];
            if !matches!(name, "not" | "defined" | "undefined" | "none" | "true" | "false") && !self.has("test", name) {
                out.push(("test", name.to_string()));
            }
        }
        out
    }

    /// Does this environment have that filter or test? (Asked of the engine itself.)
    fn has(&self, kind: &str, name: &str) -> bool {
        // `ansible.builtin.sort` is `sort` (see `builtin_names`).
        let name = name.strip_prefix("ansible.builtin.").or_else(|| name.strip_prefix("ansible.legacy.")).unwrap_or(name);
        let expr = if kind == "filter" { format!("none | {name}") } else { format!("none is {name}") };
        match self.env.compile_expression(&expr) {
            Err(_) => true, // not ours to judge here; the template's own check reports syntax
            Ok(e) => match e.eval(minijinja::context! {}) {
                Err(err) => !matches!(err.kind(), ErrorKind::UnknownFilter | ErrorKind::UnknownTest),
                Ok(_) => true,
            },
        }
    }

    pub fn undeclared(&self, src: &str) -> Result<std::collections::HashSet<String>, Error> {
        let tmpl = self.env.template_from_str(src)?;
        Ok(tmpl.undeclared_variables(false))
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
fn trailing_newlines(src: &str, mut out: String) -> String {
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
    // The expression ends at the first `}}` outside its strings and brackets: one that ends
    // before the last is not the whole text (`{{ {'b': {'d': 3}} }}` is one expression).
    let b = inner.as_bytes();
    let (mut depth, mut quote, mut i) = (0i32, None::<u8>, 0);
    while i < b.len() {
        let c = b[i];
        match quote {
            Some(_) if c == b'\\' => i += 1,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                b'\'' | b'"' => quote = Some(c),
                b'(' | b'[' => depth += 1,
                b')' | b']' | b'}' if depth > 0 => depth -= 1,
                b'{' if depth == 0 && matches!(b.get(i + 1), Some(b'{') | Some(b'%') | Some(b'#')) => return None,
                b'{' => depth += 1,
                b'}' if b.get(i + 1) == Some(&b'}') => return None,
                b'%' | b'#' if b.get(i + 1) == Some(&b'}') => return None,
                _ => {}
            },
        }
        i += 1;
    }
    Some(inner)
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

/// Turns a template error into a located input error. The template's own
/// line (for multi-line text) is added to the origin's line.
pub fn located(e: &Error, origin: &Span) -> SourceError {
    let mut msg = match e.kind() {
        ErrorKind::UndefinedError => format!("undefined variable: {}", e.detail().unwrap_or("a value is undefined")),
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
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx(t: &Templates, v: Json) -> Value {
        let Json::Object(m) = v else { panic!() };
        t.context(m.into_iter().collect())
    }

    #[test]
    fn lazy_nested_variables() {
        let t = Templates::new();
        let c = ctx(&t, json!({"vip": "10.0.0.1", "port": 80, "url": "http://{{ vip }}:{{ port }}"}));
        assert_eq!(t.render_str("{{ url }}", &c, &Span::default()).unwrap(), "http://10.0.0.1:80");
    }

    #[test]
    fn data_variables_are_never_rendered() {
        let t = Templates::new();
        let vars: Vars = serde_json::from_value(json!({"answer": {"stdout": "{{ 7*7 }} {% x"}, "tpl": "{{ 7*7 }}"})).unwrap();
        let c = t.context_with_data(vars, ["answer".to_string()].into_iter().collect());
        assert_eq!(t.render_str("{{ answer.stdout }}|{{ tpl }}", &c, &Span::default()).unwrap(), "{{ 7*7 }} {% x|49");
    }

    #[test]
    fn recursive_variables_are_an_error() {
        let t = Templates::new();
        let c = ctx(&t, json!({"a": "{{ b }}", "b": "{{ a }}"}));
        let e = t.render_str("{{ a }}", &c, &Span::default()).unwrap_err();
        assert!(e.message.contains("recursive loop"), "{e}");
    }

    #[test]
    fn undefined_is_strict() {
        let t = Templates::new();
        let c = ctx(&t, json!({}));
        let e = t.render_str("x {{ nope }}", &c, &Span::default()).unwrap_err();
        assert!(e.message.contains("undefined"), "{e}");
        assert_eq!(t.render_str("{{ nope | default('d') }}", &c, &Span::default()).unwrap(), "d");
    }

    #[test]
    fn python_style_output_and_trim_blocks() {
        let t = Templates::new();
        let c = ctx(&t, json!({"flag": true, "items": ["a", "b"]}));
        let out = t.render_str("{% if flag %}\n{{ flag }} {{ items }}\n{% endif %}\n", &c, &Span::default()).unwrap();
        assert_eq!(out, "True ['a', 'b']\n");
    }

    #[test]
    fn trailing_newlines_as_ansible_keeps_them() {
        let t = Templates::new();
        let c = ctx(&t, json!({}));
        let r = |s: &str| t.render_str(s, &c, &Span::default()).unwrap();
        // Measured against ansible-core 2.19's template module.
        assert_eq!(r("{{ 'x\\n' }}\n"), "x\n");
        assert_eq!(r("{{ 'x' }}\n\n"), "x\n\n");
        assert_eq!(r("{{ 'x\\n\\n' }}\n"), "x\n\n");
        assert_eq!(r("a\n\n"), "a\n\n");
        assert_eq!(r("{{ 'x\\n' }}\nend\n"), "x\n\nend\n");
        assert_eq!(r("{{ 'x\\n' }}"), "x\n");
    }

    #[test]
    fn shell_mode_quotes_values() {
        let t = Templates::new();
        let c = ctx(&t, json!({"x": "; rm -rf /", "dir": "/srv/a b"}));
        assert_eq!(t.render_shell("echo {{ x }}", &c, &Span::default()).unwrap(), "echo '; rm -rf /'");
        assert_eq!(t.render_shell("ls {{ dir }}/*.prom", &c, &Span::default()).unwrap(), "ls '/srv/a b'/*.prom");
        assert_eq!(t.render_shell("{{ x | quote }}", &c, &Span::default()).unwrap(), "'; rm -rf /'");
        // join quotes each item and keeps the separator.
        let c = ctx(&t, json!({"paths": ["/a b", "/c", "$(id)"]}));
        assert_eq!(t.render_shell("ls {{ paths | join(' ') }}", &c, &Span::default()).unwrap(), "ls '/a b' /c '$(id)'");
        assert_eq!(t.render_str("{{ paths | join(',') }}", &c, &Span::default()).unwrap(), "/a b,/c,$(id)");
    }

    #[test]
    fn native_types_for_single_expressions() {
        let t = Templates::new();
        let c = ctx(&t, json!({"items": [1, 2]}));
        assert_eq!(t.render_json(&json!("{{ items }}"), &c).unwrap(), json!([1, 2]));
        assert_eq!(t.render_json(&json!("n={{ items | length }}"), &c).unwrap(), json!("n=2"));
        // Text around the expression (a newline too) makes it a string.
        assert_eq!(t.render_json(&json!("{{ items | length }}\n"), &c).unwrap(), json!("2\n"));
    }

    #[test]
    fn ansible_filters() {
        let t = Templates::new();
        let c = ctx(&t, json!({"d": {"a": 1}, "e": {"b": 2}}));
        let r = |s: &str| t.render_str(s, &c, &Span::default()).unwrap();
        assert_eq!(r("{{ d | combine(e) | to_json }}"), r#"{"a": 1, "b": 2}"#);
        assert_eq!(r("{{ 'yes' | bool }}"), "True");
        assert_eq!(r("{{ 'abc-123' | regex_replace('(\\\\w+)-(\\\\d+)', '\\\\2_\\\\1') }}"), "123_abc");
        assert_eq!(r("{{ '/a/b/c.conf' | basename }} {{ '/a/b/c.conf' | dirname }}"), "c.conf /a/b");
        assert_eq!(r("{{ [[1, [2]], 3] | flatten }}"), "[1, 2, 3]");
        assert_eq!(r("{{ d | dict2items }}"), "[{'key': 'a', 'value': 1}]");
        assert_eq!(r("{{ true | ternary('y', 'n') }}"), "y");
        assert_eq!(r("{{ 'hi' | b64encode }}"), "aGk=");
        assert_eq!(r("{{ '200%' | systemd_quota }} {{ '2G' | systemd_bytes }} {{ '512M' | systemd_bytes }}"), "2s 2147483648 536870912");
    }
}

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
