//! What a template names: the filters, tests and lookups it uses that the environment lacks,
//! and the variables it reads (for the load-time checks).

use super::*;

impl Templates {
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
            let Some(end) = super::code_end(&after[2..], close) else { break };
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
    pub(crate) fn has(&self, kind: &str, name: &str) -> bool {
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
}
