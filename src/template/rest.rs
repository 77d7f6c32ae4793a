//! The rest of ansible-core 2.19's builtin filters and tests (plugins/filter/core.py,
//! mathstuff.py, urls.py; plugins/test/core.py, files.py, uri.py, mathstuff.py), with its
//! semantics: path tests on the controller's files, task-result tests, URI tests, math and path
//! filters, and the aliases Ansible registers under a second name.

use std::path::Path;

use minijinja::value::{Kwargs, Value, ValueKind};
use minijinja::{Environment, Error, ErrorKind};

use super::pyrepr::py_str;

fn err(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.into())
}

fn items(v: &Value) -> Result<Vec<Value>, Error> {
    Ok(v.try_iter()?.collect())
}

/// A task result's mapping, or Ansible's error naming the test.
fn result<'a>(v: &'a Value, test: &str) -> Result<&'a Value, Error> {
    if v.kind() == ValueKind::Map {
        Ok(v)
    } else {
        Err(err(format!("The '{test}' test expects a dictionary")))
    }
}

fn flag(v: &Value, key: &str) -> bool {
    v.get_attr(key).map(|x| x.is_true()).unwrap_or(false)
}

fn has(v: &Value, key: &str) -> bool {
    v.get_attr(key).is_ok_and(|x| !x.is_undefined())
}

/// Python's `os.path.normpath`.
pub fn normpath(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let lead = if p.starts_with("//") && !p.starts_with("///") { 2 } else if p.starts_with('/') { 1 } else { 0 };
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." if parts.last().is_some_and(|l| *l != "..") => {
                parts.pop();
            }
            ".." if lead > 0 => {}
            other => parts.push(other),
        }
    }
    let out = format!("{}{}", "/".repeat(lead), parts.join("/"));
    if out.is_empty() {
        ".".into()
    } else {
        out
    }
}

/// Python's `os.path.expanduser`.
fn expanduser(p: &str) -> String {
    let Some(rest) = p.strip_prefix('~') else { return p.to_string() };
    let (user, tail) = rest.split_once('/').map_or((rest, ""), |(u, t)| (u, t));
    let home = if user.is_empty() {
        std::env::var("HOME").ok()
    } else {
        std::fs::read_to_string("/etc/passwd").ok().and_then(|pw| pw.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 5 && f[0] == user).then(|| f[5].to_string())
        }))
    };
    let Some(home) = home else { return p.to_string() };
    let home = home.trim_end_matches('/');
    match (rest.contains('/'), home.is_empty()) {
        (false, true) => "/".into(),
        (false, false) => home.to_string(),
        (true, _) => format!("{home}/{tail}"),
    }
}

/// Python's `os.path.expandvars`: `$NAME` and `${NAME}` from the environment, others left.
fn expandvars(p: &str) -> String {
    let re = regex::Regex::new(r"\$(\w+|\{[^}]*\})").expect("static regex");
    re.replace_all(p, |c: &regex::Captures| {
        let name = c[1].trim_start_matches('{').trim_end_matches('}');
        std::env::var(name).unwrap_or_else(|_| c[0].to_string())
    })
    .into_owned()
}

/// Python's `os.path.ismount`.
fn ismount(p: &str) -> bool {
    use std::os::unix::fs::MetadataExt;
    let path = Path::new(p);
    let Ok(meta) = std::fs::symlink_metadata(path) else { return false };
    if meta.file_type().is_symlink() {
        return false;
    }
    let parent = path.join("..");
    let Ok(pm) = std::fs::metadata(&parent) else { return false };
    meta.dev() != pm.dev() || meta.ino() == pm.ino()
}

fn samefile(a: &str, b: &str) -> Result<bool, Error> {
    use std::os::unix::fs::MetadataExt;
    let ma = std::fs::metadata(a).map_err(|e| err(format!("same_file: {a}: {e}")))?;
    let mb = std::fs::metadata(b).map_err(|e| err(format!("same_file: {b}: {e}")))?;
    Ok(ma.dev() == mb.dev() && ma.ino() == mb.ino())
}

/// `urlparse`'s scheme and netloc.
fn scheme_netloc(v: &str) -> (String, String) {
    let re = regex::Regex::new(r"^(?:([A-Za-z][A-Za-z0-9+.\-]*):)?(?://([^/?#]*))?").expect("static regex");
    match re.captures(v) {
        Some(c) => (c.get(1).map_or("", |m| m.as_str()).to_lowercase(), c.get(2).map_or("", |m| m.as_str()).to_string()),
        None => (String::new(), String::new()),
    }
}

fn is_uri(v: &str, schemes: &Option<Vec<String>>) -> bool {
    let (scheme, _) = scheme_netloc(v);
    schemes.as_ref().is_none_or(|s| s.contains(&scheme))
}

fn schemes_of(v: Option<Value>) -> Result<Option<Vec<String>>, Error> {
    match v {
        None => Ok(None),
        Some(v) if v.is_none() => Ok(None),
        Some(v) => Ok(Some(items(&v)?.iter().map(py_str).collect())),
    }
}

/// ntpath's drive split: `C:` or `\\server\share`.
fn win_splitdrive(p: &str) -> (String, String) {
    let norm = p.replace('/', "\\");
    if norm.starts_with("\\\\") && !norm.starts_with("\\\\\\") {
        let rest = &norm[2..];
        if let Some(i) = rest.find('\\') {
            let after = &rest[i + 1..];
            let j = after.find('\\').map_or(after.len(), |j| j);
            if j > 0 {
                let cut = 2 + i + 1 + j;
                return (p[..cut].to_string(), p[cut..].to_string());
            }
        }
        return (String::new(), p.to_string());
    }
    if p.len() >= 2 && p.as_bytes()[1] == b':' {
        return (p[..2].to_string(), p[2..].to_string());
    }
    (String::new(), p.to_string())
}

fn win_split(p: &str) -> (String, String) {
    let (drive, rest) = win_splitdrive(p);
    let i = rest.rfind(['/', '\\']).map_or(0, |i| i + 1);
    let (head, tail) = (&rest[..i], &rest[i..]);
    let trimmed = head.trim_end_matches(['/', '\\']);
    let head = if trimmed.is_empty() { head } else { trimmed };
    (format!("{drive}{head}"), tail.to_string())
}

fn number(v: &Value, what: &str) -> Result<f64, Error> {
    f64::try_from(v.clone()).or_else(|_| py_str(v).trim().parse::<f64>()).map_err(|_| err(format!("{what}: can only be used on numbers: {v}")))
}

pub fn register(env: &mut Environment<'static>) {
    // Path tests (plugins/test/files.py), on the controller's files.
    for name in ["directory", "is_dir"] {
        env.add_test(name, |p: String| Path::new(&p).is_dir());
    }
    for name in ["file", "is_file"] {
        env.add_test(name, |p: String| Path::new(&p).is_file());
    }
    for name in ["link", "is_link"] {
        env.add_test(name, |p: String| std::fs::symlink_metadata(&p).is_ok_and(|m| m.file_type().is_symlink()));
    }
    env.add_test("exists", |p: String| Path::new(&p).exists());
    env.add_test("link_exists", |p: String| std::fs::symlink_metadata(&p).is_ok());
    env.add_test("is_abs", |p: String| p.starts_with('/'));
    for name in ["same_file", "is_same_file"] {
        env.add_test(name, |a: String, b: String| samefile(&a, &b));
    }
    for name in ["mount", "is_mount"] {
        env.add_test(name, |p: String| ismount(&p));
    }
    // Task results (plugins/test/core.py).
    for name in ["changed", "change"] {
        env.add_test(name, |v: Value| -> Result<bool, Error> {
            let r = result(&v, "changed")?;
            if has(r, "changed") {
                return Ok(flag(r, "changed"));
            }
            let results = r.get_attr("results").unwrap_or_default();
            if results.kind() == ValueKind::Seq && results.get_item_by_index(0).is_ok_and(|f| f.kind() == ValueKind::Map) {
                return Ok(items(&results)?.iter().any(|x| flag(x, "changed")));
            }
            Ok(false)
        });
    }
    for name in ["skipped", "skip"] {
        env.add_test(name, |v: Value| -> Result<bool, Error> { Ok(flag(result(&v, "skipped")?, "skipped")) });
    }
    for name in ["failed", "failure"] {
        env.add_test(name, |v: Value| -> Result<bool, Error> { Ok(flag(result(&v, "failed")?, "failed")) });
    }
    for name in ["success", "succeeded", "successful"] {
        env.add_test(name, |v: Value| -> Result<bool, Error> { Ok(!flag(result(&v, "failed")?, "failed")) });
    }
    env.add_test("unreachable", |v: Value| -> Result<bool, Error> { Ok(flag(result(&v, "unreachable")?, "unreachable")) });
    env.add_test("reachable", |v: Value| -> Result<bool, Error> { Ok(!flag(result(&v, "unreachable")?, "unreachable")) });
    env.add_test("timedout", |v: Value| -> Result<bool, Error> {
        let r = result(&v, "timedout")?;
        let t = r.get_attr("timedout").unwrap_or_default();
        Ok(t.is_true() && t.get_attr("period").is_ok_and(|p| p.is_true()))
    });
    env.add_test("started", |v: Value| -> Result<bool, Error> {
        let r = result(&v, "started")?;
        // A task that was not async counts as started, as Ansible has it (with a warning).
        Ok(!has(r, "started") || flag(r, "started"))
    });
    env.add_test("finished", |v: Value| -> Result<bool, Error> {
        let r = result(&v, "finished")?;
        Ok(!has(r, "finished") || flag(r, "finished"))
    });
    // A `!vault` value: recover decrypts them as it loads, and remembers which ones they were.
    env.add_test("vault_encrypted", |v: Value| -> bool {
        v.as_str().is_some_and(|s| crate::vault::decrypted_values().iter().any(|d| d == s))
    });
    env.add_test("vaulted_file", |p: String| -> Result<bool, Error> {
        let bytes = std::fs::read(&p).map_err(|e| err(format!("Cannot test if the file '{p}' is a vault: {e}")))?;
        Ok(crate::vault::is_vaulted(&bytes))
    });
    // URIs (plugins/test/uri.py).
    env.add_test("uri", |v: String, schemes: Option<Value>| -> Result<bool, Error> { Ok(is_uri(&v, &schemes_of(schemes)?)) });
    env.add_test("url", |v: String, schemes: Option<Value>| -> Result<bool, Error> {
        let s = schemes_of(schemes)?;
        let (scheme, netloc) = scheme_netloc(&v);
        Ok(is_uri(&v, &s) && (!netloc.is_empty() || scheme == "file"))
    });
    env.add_test("urn", |v: String| is_uri(&v, &Some(vec!["urn".into()])));
    // Math aliases (plugins/test/mathstuff.py).
    env.add_test("isnan", |a: Value| -> bool { f64::try_from(a).is_ok_and(f64::is_nan) });
    env.add_test("issubset", |a: Value, b: Value| -> Result<bool, Error> {
        let b = items(&b)?;
        Ok(items(&a)?.iter().all(|x| b.contains(x)))
    });
    env.add_test("issuperset", |a: Value, b: Value| -> Result<bool, Error> {
        let a = items(&a)?;
        Ok(items(&b)?.iter().all(|x| a.contains(x)))
    });

    // Filters.
    env.add_filter("normpath", |p: String| normpath(&p));
    env.add_filter("expanduser", |p: String| expanduser(&p));
    env.add_filter("expandvars", |p: String| expandvars(&p));
    env.add_filter("commonpath", |paths: Value| -> Result<String, Error> {
        let list: Vec<String> = items(&paths)?.iter().map(py_str).collect();
        if list.is_empty() {
            return Err(err("commonpath() arg is an empty sequence"));
        }
        let abs = list[0].starts_with('/');
        if list.iter().any(|p| p.starts_with('/') != abs) {
            return Err(err("Can't mix absolute and relative paths"));
        }
        let split: Vec<Vec<&str>> = list.iter().map(|p| p.split('/').filter(|c| !c.is_empty() && *c != ".").collect()).collect();
        let mut common: Vec<&str> = split[0].clone();
        for s in &split[1..] {
            let n = common.iter().zip(s).take_while(|(a, b)| a == b).count();
            common.truncate(n);
        }
        Ok(format!("{}{}", if abs { "/" } else { "" }, common.join("/")))
    });
    env.add_filter("fileglob", |pattern: String| -> Vec<String> {
        glob::glob(&pattern).map(|g| g.flatten().filter(|p| p.is_file()).map(|p| p.display().to_string()).collect()).unwrap_or_default()
    });
    env.add_filter("from_yaml_all", |s: String| -> Result<Value, Error> {
        let docs = crate::yaml::parse_all(&s, Path::new("<from_yaml_all>")).map_err(|e| err(format!("from_yaml_all: {e}")))?;
        Ok(super::to_value(docs.iter().map(|d| super::strip_unsafe(&d.to_json()).into_owned()).collect::<Vec<_>>()))
    });
    env.add_filter("log", |x: Value, base: Option<Value>| -> Result<f64, Error> {
        let x = number(&x, "log")?;
        Ok(match base {
            Some(b) if !b.is_none() => {
                let b = number(&b, "log")?;
                if b == 10.0 { x.log10() } else { x.ln() / b.ln() }
            }
            _ => x.ln(),
        })
    });
    env.add_filter("pow", |x: Value, y: Value| -> Result<f64, Error> { Ok(number(&x, "pow")?.powf(number(&y, "pow")?)) });
    env.add_filter("root", |x: Value, base: Option<Value>| -> Result<f64, Error> {
        let x = number(&x, "root")?;
        let b = match base {
            Some(b) if !b.is_none() => number(&b, "root")?,
            _ => 2.0,
        };
        Ok(if b == 2.0 { x.sqrt() } else { x.powf(1.0 / b) })
    });
    env.add_filter("rekey_on_member", |data: Value, key: Value, kw: Kwargs| -> Result<Value, Error> {
        let duplicates = kw.get::<Option<String>>("duplicates")?.unwrap_or_else(|| "error".into());
        kw.assert_all_used()?;
        if duplicates != "error" && duplicates != "overwrite" {
            return Err(err(format!("duplicates parameter to rekey_on_member has unknown value: {duplicates}")));
        }
        let list: Vec<Value> = match data.kind() {
            ValueKind::Map => data.try_iter()?.map(|k| data.get_item(&k).unwrap_or_default()).collect(),
            ValueKind::Seq | ValueKind::Iterable => items(&data)?,
            _ => return Err(err(format!("Type is not a valid list, set, or dict: {}", py_str(&data)))),
        };
        let mut out: indexmap::IndexMap<String, Value> = indexmap::IndexMap::new();
        let mut keys: Vec<Value> = Vec::new();
        for item in list {
            if item.kind() != ValueKind::Map {
                return Err(err(format!("List item is not a valid dict: {}", py_str(&item))));
            }
            let k = item.get_item(&key).ok().filter(|v| !v.is_undefined()).ok_or_else(|| err(format!("Key {} was not found", py_str(&key))))?;
            if keys.contains(&k) && duplicates == "error" {
                return Err(err(format!("Key {} is not unique, cannot correctly turn into dict", py_str(&k))));
            }
            if !keys.contains(&k) {
                keys.push(k.clone());
            }
            out.insert(py_str(&k), item);
        }
        let map: indexmap::IndexMap<Value, Value> = keys
            .into_iter()
            .map(|k| {
                let v = out.get(&py_str(&k)).cloned().unwrap_or_default();
                (k, v)
            })
            .collect();
        Ok(Value::from(map))
    });
    env.add_filter("to_uuid", |s: Value, namespace: Option<String>, kw: Kwargs| -> Result<String, Error> {
        let namespace = kw.get::<Option<String>>("namespace")?.or(namespace);
        kw.assert_all_used()?;
        let ns = namespace.unwrap_or_else(|| "361E6D51-FAEC-444A-9079-341386DA8E2E".into());
        let ns = uuid::Uuid::parse_str(&ns).map_err(|e| err(format!("to_uuid: invalid namespace {ns}: {e}")))?;
        Ok(uuid::Uuid::new_v5(&ns, py_str(&s).as_bytes()).to_string())
    });
    // Python's urllib.parse.unquote_plus.
    env.add_filter("urldecode", |s: String| -> String {
        let bytes = s.replace('+', " ").into_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok()).and_then(|h| u8::from_str_radix(h, 16).ok());
            match (bytes[i], hex) {
                (b'%', Some(b)) => {
                    out.push(b);
                    i += 3;
                }
                (c, _) => {
                    out.push(c);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    });
    env.add_filter("win_splitdrive", |p: String| -> Value {
        let (d, r) = win_splitdrive(&p);
        Value::from(vec![Value::from(d), Value::from(r)])
    });
    env.add_filter("win_basename", |p: String| win_split(&p).1);
    env.add_filter("win_dirname", |p: String| win_split(&p).0);
}

