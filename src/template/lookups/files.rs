//! Lookups that read this machine: files, templates, globs, commands, INI and CSV files, the
//! environment, vault files, passwords kept in files, URLs.

use minijinja::value::{Kwargs, Value};
use minijinja::{Error, State};

use super::*;

/// The lookups of this file: `None` when `kind` is not one of them.
pub(super) fn run(state: &State, kind: &str, terms: &[Value], kw: &Kwargs) -> Result<Option<Vec<Value>>, Error> {
    Ok(Some(match kind {
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
                let mut ctx: std::collections::BTreeMap<String, Value> = names.iter().filter_map(|n| state.lookup(n).map(|v| (n.to_string(), v))).collect();
                // template_vars: more variables, for this template only.
                if let Some(extra) = kw.get::<Option<Value>>("template_vars")?.filter(|v| !v.is_none()) {
                    for k in extra.try_iter()? {
                        let v = extra.get_item(&k)?;
                        ctx.insert(py_str(&k), v);
                    }
                }
                let _pause = crate::template::NativeWatch::pause();
                let src = crate::template::raw_as_jinja2(&text);
                let mut env = state.env().clone();
                env.set_syntax(lookup_syntax(&kw)?);
                if !(text.contains("include") || text.contains("import") || text.contains("extends")) {
                    out.push(rendered(&src, env.render_str(&src, Value::from_object(ctx))?));
                    continue;
                }
                // `{% include %}` and friends look in the template's own folder, then where the
                // lookup looks for templates (the role's, the playbook's), as ansible-core's.
                let mut dirs: Vec<std::path::PathBuf> = path.parent().map(|p| vec![p.to_path_buf()]).unwrap_or_default();
                for key in ["role_path", "playbook_dir"] {
                    if let Some(d) = state.lookup(key).filter(|v| !v.is_undefined() && !v.is_none()) {
                        let d = std::path::PathBuf::from(py_str(&d));
                        dirs.extend([d.join("templates"), d]);
                    }
                }
                env.set_loader(crate::template::folder_loader(dirs));
                out.push(rendered(&src, env.render_str(&src, Value::from_object(ctx))?));
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
            const OPTIONS: &[&str] = &["file", "col", "delimiter", "default", "encoding", "keycol"];
            // ansible-core's checks: a search key, and only the lookup's own options.
            for k in kw.args() {
                if !OPTIONS.contains(&k) && !matches!(k, "wantlist" | "errors") {
                    return Err(err(format!("{k} is not a valid option")));
                }
            }
            let terms = flat(terms);
            if terms.is_empty() {
                return Err(err("Search key is required but was not found"));
            }
            let mut out = Vec::new();
            for t in terms {
                let (key, mut o) = kv_term(&py_str(&t));
                if key.is_empty() {
                    return Err(err("Search key is required but was not found"));
                }
                if let Some(k) = o.keys().find(|k| !OPTIONS.contains(&k.as_str())) {
                    return Err(err(format!("{k} is not a valid option")));
                }
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
                let col: usize = o.get("col").map_or(Ok(1), |c| c.parse()).map_err(|_| err(format!("Option 'col' has an invalid value: {:?} is not an integer", o.get("col").cloned().unwrap_or_default())))?;
                let keycol: usize = o.get("keycol").map_or(Ok(0), |c| c.parse()).map_err(|_| err(format!("Option 'keycol' has an invalid value: {:?} is not an integer", o.get("keycol").cloned().unwrap_or_default())))?;
                let path = find(state, &file, "files").ok_or_else(|| err(format!("csvfile: [Errno 2] No such file or directory: '{file}'")))?;
                let text = String::from_utf8_lossy(&crate::vault::read_file(&path).map_err(err)?).into_owned();
                let found = text.lines().map(|l| csv_row(l, delim)).find(|r| r.get(keycol) == Some(&key));
                // ansible-core adds nothing for a key it does not find and no default.
                match found {
                    Some(r) => out.push(Value::from(r.get(col).cloned().ok_or_else(|| err(format!("csvfile: no column {col} in the row of {key}")))?)),
                    // A list default adds its items (joined by `lookup`, as ansible-core's).
                    None => match kw.get::<Option<Value>>("default")? {
                        Some(d) if d.kind() == ValueKind::Seq => out.extend(d.try_iter()?),
                        _ => out.extend(o.get("default").map(|d| Value::from(d.clone()))),
                    },
                }
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
        _ => return Ok(None),
    }))
}

/// The template lookup's syntax: the environment's (trim_blocks, Jinja2's delimiters) with the
/// lookup's own options (`variable_start_string='[%'`, `trim_blocks=false` ...). (The
/// template's trailing newlines are put back after, as ansible-core's lookup does: not those
/// of an included template.)
fn lookup_syntax(kw: &minijinja::value::Kwargs) -> Result<minijinja::syntax::SyntaxConfig, Error> {
    let s = |k: &str, d: &str| -> Result<String, Error> { Ok(kw.get::<Option<String>>(k)?.unwrap_or_else(|| d.to_string())) };
    let mut b = minijinja::syntax::SyntaxConfig::builder();
    b.trim_blocks(kw.get::<Option<bool>>("trim_blocks")?.unwrap_or(true));
    b.variable_delimiters(s("variable_start_string", "{{")?, s("variable_end_string", "}}")?)
        .comment_delimiters(s("comment_start_string", "{#")?, s("comment_end_string", "#}")?);
    b.build().map_err(|e| err(format!("the template lookup's syntax options: {e}")))
}

/// A template lookup's result: None for a template that renders nothing (ansible-core 2.19),
/// else the text with the template's own trailing newlines.
fn rendered(src: &str, out: String) -> Value {
    if out.is_empty() {
        return Value::from(());
    }
    Value::from(crate::template::trailing_newlines(src, out))
}
