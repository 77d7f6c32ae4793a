//! Rendering: a string, a file, a template file (with its search path), a shell line, words,
//! an expression, a JSON value; every error located at `file:line:col`.

use super::*;

/// A loader for `{% include %}`, `{% import %}`, `{% from %}` and `{% extends %}`: the first of
/// `dirs` that has the file (vault-encrypted ones decrypted). As Jinja2's FileSystemLoader, a
/// name is a relative path without `..`.
pub(crate) fn folder_loader(dirs: Vec<std::path::PathBuf>) -> impl Fn(&str) -> Result<Option<String>, Error> + Send + Sync + 'static {
    move |name| {
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
    }
}

impl Templates {
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
        env.set_loader(folder_loader(dirs));
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
        let expr = super::plugins::rewrite(&format!("{{{{ {expr} }}}}")).into_owned();
        let expr = expr.strip_prefix("{{ ").and_then(|e| e.strip_suffix(" }}")).unwrap_or(&expr).to_string();
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
}
