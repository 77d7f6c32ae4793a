//! ansible-core's builtin lookup plugins, as `lookup()`, `query()` and `q()` call them: each
//! plugin returns a list, and `lookup` then munges it as ansible-core does (one element: that
//! element; several strings: joined with commas; otherwise the list), unless `wantlist=True`.
//! `errors='ignore'|'warn'` gives `None` (or `[]` with wantlist) instead of an error.

mod data;
mod files;

use minijinja::value::{Kwargs, Rest, Value, ValueKind};
use minijinja::{Error, ErrorKind, State};

use crate::template::pyrepr::py_str;

/// The lookups implemented here (an unknown one is a load error naming it).
pub const LOOKUPS: &[&str] = &[
    "env", "file", "template", "pipe", "lines", "first_found", "fileglob", "items", "list", "dict", "indexed_items", "sequence", "subelements", "together", "nested", "vars",
    "varnames", "password", "url", "random_choice", "unvault", "csvfile", "ini", "inventory_hostnames",
];

/// ansible-core lookups recover refuses at load, with the reason.
pub const REFUSED_LOOKUPS: &[(&str, &str)] = &[("config", "it reads ansible.cfg settings, and recover has no ansible.cfg: set the value as a variable")];

/// `key k=v k=v` terms (csvfile, ini): the key and the options, options given as keywords too.
/// As ansible-core's parse_kv: words split at blanks outside quotes; the key is the words that
/// are not `k=v`, joined as written (quotes kept: `"The Rock" Johnson` searches for the quotes);
/// an option's value loses its outer quotes.
fn kv_term(term: &str) -> (String, std::collections::HashMap<String, String>) {
    let mut words: Vec<&str> = Vec::new();
    let mut start: Option<usize> = None;
    let mut quote: Option<char> = None;
    for (i, c) in term.char_indices() {
        match (c, quote) {
            (c, None) if c.is_whitespace() => {
                if let Some(st) = start.take() {
                    words.push(&term[st..i]);
                }
                continue;
            }
            ('\'', None) | ('"', None) => quote = Some(c),
            (q, Some(open)) if q == open => quote = None,
            _ => {}
        }
        start.get_or_insert(i);
    }
    if let Some(st) = start {
        words.push(&term[st..]);
    }
    let mut key = Vec::new();
    let mut opts = std::collections::HashMap::new();
    for w in words {
        match w.split_once('=') {
            Some((k, v)) if !k.is_empty() && k.chars().all(|c| c.is_alphanumeric() || c == '_') => {
                let v = match (v.chars().next(), v.chars().last()) {
                    (Some(q @ ('\'' | '"')), Some(l)) if v.len() >= 2 && q == l => &v[1..v.len() - 1],
                    _ => v,
                };
                opts.insert(k.to_string(), v.to_string());
            }
            _ => key.push(w),
        }
    }
    (key.join(" "), opts)
}

/// One row of CSV as Python's csv module reads it (quotes with doubled quotes inside).
fn csv_row(line: &str, delim: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (false, '"') if cur.is_empty() => quoted = true,
            (false, c) if c == delim => out.push(std::mem::take(&mut cur)),
            (_, c) => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// `section -> [(key, value)]` of an INI file as Python's configparser reads it (keys lowercased
/// unless `case_sensitive`, `=` or `:`, indented continuation lines, `#`/`;` comments).
fn ini_sections(text: &str, case_sensitive: bool, properties: bool) -> Vec<(String, Vec<(String, Option<String>)>)> {
    let mut out: Vec<(String, Vec<(String, Option<String>)>)> = vec![("java_properties".into(), Vec::new())];
    for raw in text.lines() {
        let line = raw.trim_end();
        let t = line.trim_start();
        if t.is_empty() || t.starts_with('#') || t.starts_with(';') {
            continue;
        }
        if !properties && t.starts_with('[') && t.ends_with(']') {
            out.push((t[1..t.len() - 1].to_string(), Vec::new()));
            continue;
        }
        let section = &mut out.last_mut().expect("a section").1;
        if line.starts_with([' ', '\t']) && !section.is_empty() {
            if let Some((_, Some(v))) = section.last_mut() {
                v.push('\n');
                v.push_str(t);
            }
            continue;
        }
        let cut = t.find(['=', ':']);
        let (k, v) = match cut {
            Some(i) => (t[..i].trim().to_string(), Some(t[i + 1..].trim().to_string())),
            None => (t.to_string(), None),
        };
        let k = if case_sensitive { k } else { k.to_lowercase() };
        section.retain(|(x, _)| *x != k);
        section.push((k, v));
    }
    out
}

fn err(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.into())
}

fn seq(v: &Value) -> Vec<Value> {
    match v.kind() {
        ValueKind::Seq | ValueKind::Iterable => v.try_iter().map(|i| i.collect()).unwrap_or_default(),
        _ => vec![v.clone()],
    }
}

/// The terms flattened one level, as ansible's `listify_lookup_plugin_terms`.
fn flat(terms: &[Value]) -> Vec<Value> {
    terms.iter().flat_map(seq).collect()
}

/// Where a relative file of a lookup is looked for: the playbook's files/ and templates/, its
/// folder, then as written (the current folder).
fn find(state: &State, name: &str, sub: &str) -> Option<std::path::PathBuf> {
    let p = std::path::Path::new(name);
    if p.is_absolute() {
        return p.exists().then(|| p.to_path_buf());
    }
    let mut dirs = Vec::new();
    if let Some(role) = state.lookup("role_path").filter(|v| !v.is_undefined()) {
        let r = std::path::PathBuf::from(py_str(&role));
        dirs.extend([r.join(sub), r.clone()]);
        // ansible-core's search stack also holds the role's task files' folder, and what a
        // task's action searches (include_vars: vars/, template: templates/): a role's
        // `first_found` finds its own tasks/default.yml or vars/Debian.yml.
        dirs.extend(["tasks", "vars", "templates", "files"].iter().filter(|d| **d != sub).map(|d| r.join(d)));
    }
    if let Some(pd) = state.lookup("playbook_dir").filter(|v| !v.is_undefined()) {
        let d = std::path::PathBuf::from(py_str(&pd));
        dirs.extend([d.join(sub), d.clone()]);
    }
    dirs.push(std::env::current_dir().unwrap_or_default());
    dirs.into_iter().map(|d| d.join(name)).find(|c| c.exists())
}

fn run_sh(cmd: &str) -> Result<(i32, String), Error> {
    let out = std::process::Command::new("sh").args(["-c", cmd]).output().map_err(|e| err(format!("cannot run {cmd:?}: {e}")))?;
    Ok((out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned()))
}

fn run(state: &State, kind: &str, terms: &[Value], kw: &Kwargs) -> Result<Vec<Value>, Error> {
    let kind = kind.strip_prefix("ansible.builtin.").unwrap_or(kind);
    if let Some(v) = files::run(state, kind, terms, kw)? {
        return Ok(v);
    }
    if let Some(v) = data::run(state, kind, terms, kw)? {
        return Ok(v);
    }
    if let Some(r) = super::plugins::lookup(kind, terms, kw) {
        return r;
    }
    Err(match kind {
        "config" => err("lookup plugin 'config' reads ansible.cfg settings; recover has no ansible.cfg (set the value as a variable)"),
        other => err(format!("lookup plugin '{other}' is not supported by recover (supported: {})", LOOKUPS.join(", "))),
    })
}

/// `lookup(name, *terms, wantlist=False, errors='strict', **options)`.
pub fn lookup(state: &State, kind: String, terms: Rest<Value>, kw: Kwargs) -> Result<Value, Error> {
    call(state, &kind, &terms, kw, false)
}

/// `query(name, *terms)` / `q(...)`: always the plugin's list.
pub fn query(state: &State, kind: String, terms: Rest<Value>, kw: Kwargs) -> Result<Value, Error> {
    call(state, &kind, &terms, kw, true)
}

fn call(state: &State, kind: &str, terms: &[Value], kw: Kwargs, force_list: bool) -> Result<Value, Error> {
    let wantlist = force_list || kw.get::<Option<bool>>("wantlist")?.unwrap_or(false);
    let errors = kw.get::<Option<String>>("errors")?.unwrap_or_else(|| "strict".into());
    let res = run(state, kind, terms, &kw);
    let res = match res {
        Ok(r) => r,
        Err(e) if errors == "ignore" || errors == "warn" => {
            if errors == "warn" {
                eprintln!("[WARNING]: An unhandled exception occurred while running the lookup plugin '{kind}': {e}");
            }
            return Ok(if wantlist { Value::from(Vec::<Value>::new()) } else { Value::from(()) });
        }
        Err(e) => return Err(e),
    };
    if wantlist {
        return Ok(Value::from(res));
    }
    Ok(match res.len() {
        0 => Value::from(res),
        1 => res.into_iter().next().unwrap_or_default(),
        _ if res.iter().all(|v| v.kind() == ValueKind::String) => Value::from(res.iter().map(py_str).collect::<Vec<_>>().join(",")),
        _ => Value::from(res),
    })
}

/// Python's `fmt % i` for one integer: %d, %i, %u, %x, %X, %o, %s with flags and width, and %%.
fn percent_format(fmt: &str, i: i64) -> String {
    let re = regex::Regex::new(r"%([-0 +#]*)(\d*)([diuxXos%])").expect("static regex");
    re.replace_all(fmt, |c: &regex::Captures| {
        let (flags, width, conv) = (&c[1], c[2].parse::<usize>().unwrap_or(0), &c[3]);
        let body = match conv {
            "%" => return "%".to_string(),
            "x" => format!("{i:x}"),
            "X" => format!("{i:X}"),
            "o" => format!("{i:o}"),
            _ => i.to_string(),
        };
        if flags.contains('-') {
            format!("{body:<width$}")
        } else if flags.contains('0') {
            let (sign, digits) = body.strip_prefix('-').map(|d| ("-", d)).unwrap_or(("", body.as_str()));
            format!("{sign}{digits:0>w$}", w = width.saturating_sub(sign.len()))
        } else {
            format!("{body:>width$}")
        }
    })
    .into_owned()
}

/// The `groups` a template sees (group -> its hosts), as a host set for patterns.
struct GroupsSeen(Vec<(String, Vec<String>)>);

impl crate::hostpattern::HostSet for GroupsSeen {
    fn group_hosts(&self, group: &str) -> Vec<String> {
        if group == "all" && !self.0.iter().any(|(g, _)| g == "all") {
            return self.host_names();
        }
        self.0.iter().find(|(g, _)| g == group).map(|(_, h)| h.clone()).unwrap_or_default()
    }
    fn group_named(&self, name: &str) -> Option<String> {
        self.0.iter().find(|(g, _)| g == name).map(|(g, _)| g.clone())
    }
    fn has_host(&self, name: &str) -> bool {
        self.0.iter().any(|(_, h)| h.iter().any(|x| x == name))
    }
    fn group_names(&self) -> Vec<String> {
        self.0.iter().map(|(g, _)| g.clone()).collect()
    }
    fn host_names(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (_, hosts) in &self.0 {
            for h in hosts {
                if !out.contains(h) {
                    out.push(h.clone());
                }
            }
        }
        out
    }
}
