//! ansible-core's builtin lookup plugins, as `lookup()`, `query()` and `q()` call them: each
//! plugin returns a list, and `lookup` then munges it as ansible-core does (one element: that
//! element; several strings: joined with commas; otherwise the list), unless `wantlist=True`.
//! `errors='ignore'|'warn'` gives `None` (or `[]` with wantlist) instead of an error.

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
fn kv_term(term: &str) -> (String, std::collections::HashMap<String, String>) {
    let words = shell_words::split(term).unwrap_or_else(|_| term.split_whitespace().map(str::to_string).collect());
    let mut key = Vec::new();
    let mut opts = std::collections::HashMap::new();
    for w in words {
        match w.split_once('=') {
            Some((k, v)) if !k.is_empty() && k.chars().all(|c| c.is_alphanumeric() || c == '_') => {
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
    Ok(match kind {
        "env" => {
            let default = kw.get::<Option<Value>>("default")?.map(|v| py_str(&v)).unwrap_or_default();
            flat(terms).iter().map(|t| Value::from(std::env::var(py_str(t)).unwrap_or_else(|_| default.clone()))).collect()
        }
        "file" => {
            let rstrip = kw.get::<Option<bool>>("rstrip")?.unwrap_or(true);
            let lstrip = kw.get::<Option<bool>>("lstrip")?.unwrap_or(false);
            let mut out = Vec::new();
            for t in flat(terms) {
                let name = py_str(&t);
                let path = find(state, &name, "files").ok_or_else(|| err(format!("The 'file' lookup had an issue accessing the file '{name}'")))?;
                let bytes = crate::vault::read_file(&path).map_err(err)?;
                let mut text = String::from_utf8_lossy(&bytes).into_owned();
                if rstrip {
                    text = text.trim_end().to_string();
                }
                if lstrip {
                    text = text.trim_start().to_string();
                }
                out.push(Value::from(text));
            }
            out
        }
        "template" => {
            let mut out = Vec::new();
            for t in flat(terms) {
                let name = py_str(&t);
                let path = find(state, &name, "templates").ok_or_else(|| err(format!("the template file {name} could not be found for the lookup")))?;
                let text = String::from_utf8(crate::vault::read_file(&path).map_err(err)?).map_err(|_| err(format!("{name} is not UTF-8")))?;
                let mut names: Vec<std::borrow::Cow<'_, str>> = state.known_variables().into_iter().collect();
                // `hostvars` is served but not listed (listing it would make the context recursive).
                names.push("hostvars".into());
                let ctx: std::collections::BTreeMap<String, Value> = names.iter().filter_map(|n| state.lookup(n).map(|v| (n.to_string(), v))).collect();
                let _pause = super::NativeWatch::pause();
                out.push(Value::from(state.env().render_str(&super::raw_as_jinja2(&text), Value::from_object(ctx))?));
            }
            out
        }
        "pipe" => flat(terms).iter().map(|t| run_sh(&py_str(t)).map(|(_, o)| Value::from(o.trim_end().to_string()))).collect::<Result<_, _>>()?,
        "lines" => {
            let mut out = Vec::new();
            for t in flat(terms) {
                let (rc, o) = run_sh(&py_str(&t))?;
                if rc != 0 {
                    return Err(err(format!("lookup_plugin.lines({}) returned {rc}", py_str(&t))));
                }
                out.extend(o.lines().map(|l| Value::from(l.to_string())));
            }
            out
        }
        "first_found" => {
            let mut skip = kw.get::<Option<bool>>("skip")?.unwrap_or(false);
            let mut files: Vec<String> = kw.get::<Option<Value>>("files")?.map(|v| seq(&v).iter().map(py_str).collect()).unwrap_or_default();
            let mut paths: Vec<String> = kw.get::<Option<Value>>("paths")?.map(|v| seq(&v).iter().map(py_str).collect()).unwrap_or_default();
            for t in flat(terms) {
                if t.kind() == ValueKind::Map {
                    files.extend(t.get_attr("files").map(|v| seq(&v).iter().map(py_str).collect::<Vec<_>>()).unwrap_or_default());
                    paths.extend(t.get_attr("paths").map(|v| seq(&v).iter().map(py_str).collect::<Vec<_>>()).unwrap_or_default());
                    // A term's own `skip: true` (with_first_found's form) as the keyword.
                    if t.get_attr("skip").is_ok_and(|v| v.is_true()) {
                        skip = true;
                    }
                } else {
                    files.extend(py_str(&t).split([',', ';']).map(|s| s.trim().to_string()).filter(|s| !s.is_empty()));
                }
            }
            let candidates: Vec<String> = if paths.is_empty() { files.clone() } else { paths.iter().flat_map(|p| files.iter().map(move |f| format!("{}/{f}", p.trim_end_matches('/')))).collect() };
            match candidates.iter().find_map(|c| find(state, c, "files")) {
                Some(p) => vec![Value::from(p.display().to_string())],
                None if skip => Vec::new(),
                None => return Err(err("No file was found when using first_found.")),
            }
        }
        "fileglob" => {
            let mut out = Vec::new();
            for t in flat(terms) {
                let pat = py_str(&t);
                let pat = if pat.starts_with('/') { pat } else { find(state, std::path::Path::new(&pat).parent().map(|p| p.display().to_string()).filter(|p| !p.is_empty()).as_deref().unwrap_or("."), "files").map(|d| d.join(std::path::Path::new(&pat).file_name().unwrap_or_default()).display().to_string()).unwrap_or(pat) };
                // Python's glob.glob lists a folder in the order the file system gives (os.scandir).
                let path = std::path::Path::new(&pat);
                let parent = path.parent().map(|p| p.display().to_string()).unwrap_or_default();
                let found: Vec<String> = match (path.file_name().and_then(|n| n.to_str()), parent.contains(['*', '?', '['])) {
                    (Some(name), false) => match glob::Pattern::new(name) {
                        Ok(m) => std::fs::read_dir(if parent.is_empty() { "." } else { &parent })
                            .map(|rd| {
                                rd.flatten()
                                    .filter(|e| e.file_name().to_str().is_some_and(|n| m.matches(n) && !(n.starts_with('.') && !name.starts_with('.'))))
                                    .map(|e| e.path())
                                    .filter(|p| p.is_file())
                                    .map(|p| p.display().to_string())
                                    .collect()
                            })
                            .unwrap_or_default(),
                        Err(_) => Vec::new(),
                    },
                    _ => glob::glob(&pat).map(|g| g.flatten().filter(|p| p.is_file()).map(|p| p.display().to_string()).collect()).unwrap_or_default(),
                };
                out.extend(found.into_iter().map(Value::from));
            }
            out
        }
        "items" => flat(terms),
        // ansible-core's `list` returns its terms as they are (`items` flattens one level).
        "list" => terms.to_vec(),
        "dict" => {
            let mut out = Vec::new();
            for t in terms {
                if t.kind() != ValueKind::Map {
                    return Err(err("with_dict expects a dict"));
                }
                for k in t.try_iter()? {
                    let v = t.get_item(&k)?;
                    out.push(Value::from_object(std::collections::BTreeMap::from([(Value::from("key"), k), (Value::from("value"), v)])));
                }
            }
            out
        }
        "indexed_items" => flat(terms).into_iter().enumerate().map(|(i, v)| Value::from(vec![Value::from(i), v])).collect(),
        "sequence" => {
            let mut out = Vec::new();
            let kstart = kw.get::<Option<Value>>("start")?;
            let kend = kw.get::<Option<Value>>("end")?;
            let kcount = kw.get::<Option<Value>>("count")?;
            let kstride = kw.get::<Option<Value>>("stride")?;
            let kfmt = kw.get::<Option<String>>("format")?;
            let mut specs: Vec<(i64, i64, i64, String)> = Vec::new();
            let num = |v: &Value| -> Result<i64, Error> {
                let s = py_str(v);
                let s = s.trim();
                if let Some(h) = s.strip_prefix("0x") {
                    i64::from_str_radix(h, 16).map_err(|_| err(format!("can't parse {s} as a number")))
                } else {
                    s.parse().map_err(|_| err(format!("can't parse {s} as a number")))
                }
            };
            if terms.is_empty() {
                let start = kstart.as_ref().map(&num).transpose()?.unwrap_or(1);
                let stride = kstride.as_ref().map(&num).transpose()?.unwrap_or(1);
                let end = match (&kend, &kcount) {
                    (Some(e), None) => num(e)?,
                    (None, Some(c)) => start + (num(c)? - 1) * stride,
                    (Some(_), Some(_)) => return Err(err("can't specify both count and end in with_sequence")),
                    (None, None) => return Err(err("must specify count or end in with_sequence")),
                };
                specs.push((start, end, stride, kfmt.clone().unwrap_or_else(|| "%d".into())));
            }
            for t in terms {
                // "start-end/stride:format" or "start=1 end=10 stride=2 format=..."
                let s = py_str(t);
                let (mut start, mut end, mut stride, mut fmt) = (1i64, None::<i64>, 1i64, "%d".to_string());
                if s.contains('=') {
                    let mut count = None;
                    for w in s.split_whitespace() {
                        let (k, v) = w.split_once('=').ok_or_else(|| err(format!("bad sequence term {s:?}")))?;
                        match k {
                            "start" => start = num(&Value::from(v))?,
                            "end" => end = Some(num(&Value::from(v))?),
                            "count" => count = Some(num(&Value::from(v))?),
                            "stride" => stride = num(&Value::from(v))?,
                            "format" => fmt = v.to_string(),
                            other => return Err(err(format!("unrecognized arguments to with_sequence: {other}"))),
                        }
                    }
                    if let Some(c) = count {
                        end = Some(start + (c - 1) * stride);
                    }
                } else {
                    let (range, f) = s.split_once(':').map(|(a, b)| (a.to_string(), Some(b.to_string()))).unwrap_or((s.clone(), None));
                    if let Some(f) = f {
                        fmt = f;
                    }
                    let (range, st) = range.split_once('/').map(|(a, b)| (a.to_string(), Some(b.to_string()))).unwrap_or((range, None));
                    if let Some(st) = st {
                        stride = num(&Value::from(st))?;
                    }
                    match range.split_once('-') {
                        Some((a, b)) if !a.is_empty() => {
                            start = num(&Value::from(a))?;
                            end = Some(num(&Value::from(b))?);
                        }
                        _ => end = Some(num(&Value::from(range.as_str()))?),
                    }
                }
                specs.push((start, end.ok_or_else(|| err("must specify count or end in with_sequence"))?, stride, fmt));
            }
            let count: u128 = specs
                .iter()
                .filter(|(_, _, stride, _)| *stride != 0)
                .map(|(start, end, stride, _)| {
                    let span = (*end as i128 - *start as i128) / *stride as i128;
                    if span < 0 { 0 } else { span as u128 + 1 }
                })
                .sum();
            super::bounded(count, "the sequence lookup")?;
            for (start, end, stride, fmt) in specs {
                if stride == 0 {
                    continue;
                }
                let mut i = start;
                while (stride > 0 && i <= end) || (stride < 0 && i >= end) {
                    out.push(Value::from(percent_format(&fmt, i)));
                    i += stride;
                }
            }
            out
        }
        "subelements" => {
            let (list, key) = match terms {
                [l, k] | [l, k, _] => (l.clone(), py_str(k)),
                _ => return Err(err("subelements lookup expects a list of two or three items")),
            };
            let skip = terms.get(2).is_some_and(|f| f.get_attr("skip_missing").is_ok_and(|v| v.is_true()));
            let mut out = Vec::new();
            for el in seq(&list) {
                let sub = el.get_attr(&key).unwrap_or(Value::UNDEFINED);
                if sub.is_undefined() {
                    if skip {
                        continue;
                    }
                    return Err(err(format!("could not find '{key}' key in iterated item '{}'", py_str(&el))));
                }
                for s in seq(&sub) {
                    out.push(Value::from(vec![el.clone(), s]));
                }
            }
            out
        }
        "together" => {
            let lists: Vec<Vec<Value>> = terms.iter().map(seq).collect();
            let n = lists.iter().map(Vec::len).max().unwrap_or(0);
            (0..n).map(|i| Value::from(lists.iter().map(|l| l.get(i).cloned().unwrap_or(Value::from(()))).collect::<Vec<_>>())).collect()
        }
        "nested" => {
            let count = terms.iter().try_fold(1u128, |acc, l| acc.checked_mul(seq(l).len() as u128)).unwrap_or(u128::MAX);
            super::bounded(count, "the nested lookup")?;
            let mut acc: Vec<Vec<Value>> = vec![Vec::new()];
            for l in terms {
                let items = seq(l);
                acc = acc.into_iter().flat_map(|prefix| items.iter().map(move |x| prefix.iter().cloned().chain(std::iter::once(x.clone())).collect::<Vec<_>>())).collect();
            }
            if terms.is_empty() {
                Vec::new()
            } else {
                acc.into_iter().map(Value::from).collect()
            }
        }
        "vars" => {
            let default = kw.get::<Option<Value>>("default")?;
            let mut out = Vec::new();
            for t in flat(terms) {
                let name = py_str(&t);
                match state.lookup(&name).filter(|v| !v.is_undefined()) {
                    Some(v) => out.push(v),
                    None => match &default {
                        Some(d) => out.push(d.clone()),
                        None => return Err(err(format!("No variable named '{name}' was found"))),
                    },
                }
            }
            out
        }
        "varnames" => {
            let mut names: Vec<String> = state.known_variables().iter().map(|n| n.to_string()).collect();
            names.sort();
            let mut out = Vec::new();
            for t in flat(terms) {
                let re = regex::Regex::new(&py_str(&t)).map_err(|e| err(format!("varnames: {e}")))?;
                out.extend(names.iter().filter(|n| re.find(n).is_some_and(|m| m.start() == 0)).map(|n| Value::from(n.as_str())));
            }
            out
        }
        "random_choice" => {
            let list = flat(terms);
            if list.is_empty() {
                Vec::new()
            } else {
                let mut r = crate::template::pyrandom::PyRandom::from_str_seed(&uuid::Uuid::new_v4().to_string());
                vec![list[r.randbelow(list.len() as u64) as usize].clone()]
            }
        }
        "unvault" => {
            let mut out = Vec::new();
            for t in flat(terms) {
                let name = py_str(&t);
                let path = find(state, &name, "files").ok_or_else(|| err(format!("Unable to find '{name}' in expected paths")))?;
                let bytes = crate::vault::read_file(&path).map_err(err)?;
                out.push(Value::from(String::from_utf8_lossy(&bytes).into_owned()));
            }
            out
        }
        "csvfile" => {
            let mut out = Vec::new();
            for t in flat(terms) {
                let (key, mut o) = kv_term(&py_str(&t));
                for name in ["file", "col", "delimiter", "default", "encoding", "keycol"] {
                    if let Some(v) = kw.get::<Option<Value>>(name)? {
                        o.entry(name.to_string()).or_insert_with(|| py_str(&v));
                    }
                }
                let file = o.get("file").cloned().unwrap_or_else(|| "ansible.csv".into());
                let delim = match o.get("delimiter").map(String::as_str).unwrap_or("TAB") {
                    "TAB" | "\\t" | "\t" => '\t',
                    d => d.chars().next().unwrap_or('\t'),
                };
                let col: usize = o.get("col").map_or(Ok(1), |c| c.parse()).map_err(|_| err("csvfile: col must be a number"))?;
                let keycol: usize = o.get("keycol").map_or(Ok(0), |c| c.parse()).map_err(|_| err("csvfile: keycol must be a number"))?;
                let path = find(state, &file, "files").ok_or_else(|| err(format!("csvfile: could not find '{file}'")))?;
                let text = String::from_utf8_lossy(&crate::vault::read_file(&path).map_err(err)?).into_owned();
                let found = text.lines().map(|l| csv_row(l, delim)).find(|r| r.get(keycol) == Some(&key));
                out.push(match found {
                    Some(r) => Value::from(r.get(col).cloned().ok_or_else(|| err(format!("csvfile: no column {col} in the row of {key}")))?),
                    None => o.get("default").map(|d| Value::from(d.clone())).unwrap_or(Value::from(())),
                });
            }
            out
        }
        "ini" => {
            let mut out = Vec::new();
            for t in flat(terms) {
                let (key, mut o) = kv_term(&py_str(&t));
                for name in ["file", "section", "re", "default", "encoding", "case_sensitive", "allow_no_value", "allow_none", "type", "interpolation"] {
                    if let Some(v) = kw.get::<Option<Value>>(name)? {
                        o.entry(name.to_string()).or_insert_with(|| py_str(&v));
                    }
                }
                let truth = |k: &str| o.get(k).is_some_and(|v| matches!(v.to_lowercase().as_str(), "true" | "yes" | "1"));
                let properties = o.get("type").is_some_and(|t| t == "properties");
                let file = o.get("file").cloned().unwrap_or_else(|| if properties { "ansible.properties".into() } else { "ansible.ini".into() });
                let section = if properties { "java_properties".to_string() } else { o.get("section").cloned().unwrap_or_else(|| "global".into()) };
                let path = find(state, &file, "files").ok_or_else(|| err(format!("ini: could not find '{file}'")))?;
                let text = String::from_utf8_lossy(&crate::vault::read_file(&path).map_err(err)?).into_owned();
                let sections = ini_sections(&text, truth("case_sensitive"), properties);
                let entries = sections.iter().rev().find(|(n, _)| *n == section).map(|(_, e)| e.clone()).ok_or_else(|| err(format!("No section '{section}' in {file}")))?;
                let key = if truth("case_sensitive") { key } else { key.to_lowercase() };
                let default = o.get("default").cloned().unwrap_or_default();
                if truth("re") {
                    let re = regex::Regex::new(&key).map_err(|e| err(format!("ini: bad regular expression {key}: {e}")))?;
                    out.extend(entries.iter().filter(|(k, _)| re.is_match(k)).map(|(_, v)| v.clone().map(Value::from).unwrap_or(Value::from(()))));
                } else {
                    out.push(match entries.iter().find(|(k, _)| *k == key) {
                        Some((_, v)) => v.clone().map(Value::from).unwrap_or(Value::from(())),
                        None => Value::from(default),
                    });
                }
            }
            out
        }
        "inventory_hostnames" => {
            let groups = state.lookup("groups").filter(|g| g.kind() == ValueKind::Map).ok_or_else(|| err("inventory_hostnames: no `groups` variable here (it needs a play's inventory)"))?;
            let pairs: Vec<(String, Vec<String>)> = groups
                .try_iter()?
                .map(|g| {
                    let hosts = groups.get_item(&g).ok().and_then(|h| h.try_iter().ok().map(|i| i.map(|x| py_str(&x)).collect())).unwrap_or_default();
                    (py_str(&g), hosts)
                })
                .collect();
            let inv = GroupsSeen(pairs);
            let pattern = flat(terms).iter().map(py_str).collect::<Vec<_>>().join(":");
            match crate::hostpattern::select(&inv, &pattern) {
                Ok(hosts) => hosts.into_iter().map(Value::from).collect(),
                Err(_) => Vec::new(),
            }
        }
        "config" => return Err(err("lookup plugin 'config' reads ansible.cfg settings; recover has no ansible.cfg (set the value as a variable)")),
        "password" => {
            let mut out = Vec::new();
            for t in flat(terms) {
                let spec = py_str(&t);
                let mut words = spec.split_whitespace();
                let path = words.next().unwrap_or("/dev/null").to_string();
                let mut length = kw.get::<Option<usize>>("length")?.unwrap_or(20);
                let mut chars = kw.get::<Option<Value>>("chars")?.map(|v| seq(&v).iter().map(py_str).collect::<Vec<_>>());
                for w in words {
                    match w.split_once('=') {
                        Some(("length", n)) => length = n.parse().map_err(|_| err(format!("password: bad length {n}")))?,
                        Some(("chars", c)) => chars = Some(c.split(',').map(str::to_string).collect()),
                        _ => {}
                    }
                }
                if path != "/dev/null" {
                    if let Ok(existing) = std::fs::read_to_string(&path) {
                        out.push(Value::from(existing.lines().next().unwrap_or("").split(" salt=").next().unwrap_or("").to_string()));
                        continue;
                    }
                }
                let alphabet: String = chars
                    .unwrap_or_else(|| vec!["ascii_letters".into(), "digits".into(), ".,:-_".into()])
                    .iter()
                    .map(|c| match c.as_str() {
                        "ascii_letters" => "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".to_string(),
                        "ascii_lowercase" => "abcdefghijklmnopqrstuvwxyz".to_string(),
                        "ascii_uppercase" => "ABCDEFGHIJKLMNOPQRSTUVWXYZ".to_string(),
                        "digits" => "0123456789".to_string(),
                        "hexdigits" => "0123456789abcdefABCDEF".to_string(),
                        "punctuation" => "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~".to_string(),
                        other => other.to_string(),
                    })
                    .collect();
                let alpha: Vec<char> = alphabet.chars().collect();
                let mut pw = String::new();
                while pw.chars().count() < length {
                    for b in uuid::Uuid::new_v4().as_bytes() {
                        if pw.chars().count() < length && (*b as usize) < 256 - 256 % alpha.len().max(1) {
                            pw.push(alpha[*b as usize % alpha.len()]);
                        }
                    }
                }
                if path != "/dev/null" {
                    if let Some(parent) = std::path::Path::new(&path).parent() {
                        let _ = std::fs::create_dir_all(parent);
                    }
                    std::fs::write(&path, format!("{pw}\n")).map_err(|e| err(format!("password: cannot write {path}: {e}")))?;
                }
                out.push(Value::from(pw));
            }
            out
        }
        "url" => {
            let split = kw.get::<Option<bool>>("split_lines")?.unwrap_or(true);
            let timeout = kw.get::<Option<f64>>("timeout")?.unwrap_or(10.0);
            let headers: Vec<(String, String)> = match kw.get::<Option<Value>>("headers")? {
                Some(h) if !h.is_none() => h.try_iter()?.map(|k| (py_str(&k), h.get_item(&k).map(|v| py_str(&v)).unwrap_or_default())).collect(),
                _ => Vec::new(),
            };
            let user = kw.get::<Option<String>>("username")?;
            let password = kw.get::<Option<String>>("password")?.unwrap_or_default();
            let force_basic = kw.get::<Option<bool>>("force_basic_auth")?.unwrap_or(false);
            let follow = kw.get::<Option<String>>("follow_redirects")?.unwrap_or_else(|| "urllib2".into());
            let agent = kw.get::<Option<String>>("http_agent")?.unwrap_or_else(|| "ansible-httpget".into());
            // Accepted as Ansible takes them; recover has no proxy and verifies certificates always.
            for flag in ["validate_certs", "use_proxy", "force"] {
                let _ = kw.get::<Option<bool>>(flag)?;
            }
            let config = ureq::Agent::config_builder()
                .timeout_global(Some(std::time::Duration::from_secs_f64(timeout.max(0.001))))
                .max_redirects(if matches!(follow.as_str(), "none" | "no" | "false") { 0 } else { 10 })
                .user_agent(agent)
                .http_status_as_error(true)
                .build();
            let agent: ureq::Agent = config.into();
            let mut out = Vec::new();
            for t in flat(terms) {
                let url = py_str(&t);
                let mut req = agent.get(&url);
                for (k, v) in &headers {
                    req = req.header(k.as_str(), v.as_str());
                }
                if let (Some(u), true) = (&user, force_basic || user.is_some()) {
                    use base64::Engine;
                    let token = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{password}"));
                    req = req.header("Authorization", format!("Basic {token}"));
                }
                let mut resp = req.call().map_err(|e| err(format!("Received HTTP error for {url} : {e}")))?;
                let body = resp.body_mut().read_to_string().map_err(|e| err(format!("url: {url}: {e}")))?;
                if split {
                    out.extend(body.lines().map(|l| Value::from(l.to_string())));
                } else {
                    out.push(Value::from(body));
                }
            }
            out
        }
        other => return Err(err(format!("lookup plugin '{other}' is not supported by recover (supported: {})", LOOKUPS.join(", ")))),
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
