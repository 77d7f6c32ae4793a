//! More of ansible-core's builtin filters and tests (plugins/filter/core.py, mathstuff.py,
//! urlsplit.py; plugins/test/core.py, mathstuff.py), with Ansible's semantics.

use minijinja::value::{Kwargs, Value, ValueKind};
use minijinja::{Environment, Error, ErrorKind};

use crate::template::pyrepr::py_str;

fn err(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.into())
}

fn items(v: &Value) -> Result<Vec<Value>, Error> {
    match v.kind() {
        ValueKind::Seq | ValueKind::Iterable => Ok(v.try_iter()?.collect()),
        ValueKind::String => Ok(v.as_str().unwrap_or_default().chars().map(|c| Value::from(c.to_string())).collect()),
        ValueKind::Map => Ok(v.try_iter()?.collect()),
        _ => Err(err(format!("expected a list, got {}", v.kind()))),
    }
}

fn contains(list: &[Value], x: &Value) -> bool {
    list.iter().any(|i| i == x)
}

fn combos(pool: &[Value], r: usize, start: usize, cur: &mut Vec<Value>, out: &mut Vec<Value>) {
    if cur.len() == r {
        out.push(Value::from(cur.clone()));
        return;
    }
    for i in start..pool.len() {
        cur.push(pool[i].clone());
        combos(pool, r, i + 1, cur, out);
        cur.pop();
    }
}

fn perms(pool: &[Value], r: usize, used: &mut Vec<bool>, cur: &mut Vec<Value>, out: &mut Vec<Value>) {
    if cur.len() == r {
        out.push(Value::from(cur.clone()));
        return;
    }
    for i in 0..pool.len() {
        if !used[i] {
            used[i] = true;
            cur.push(pool[i].clone());
            perms(pool, r, used, cur, out);
            cur.pop();
            used[i] = false;
        }
    }
}

/// Python's `os.path.normpath` for absolute and relative POSIX paths.
fn normpath(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let lead = if p.starts_with("//") && !p.starts_with("///") { "//" } else if p.starts_with('/') { "/" } else { "" };
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." if !lead.is_empty() && parts.is_empty() => {}
            ".." if parts.last().is_some_and(|l| *l != "..") => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    let s = format!("{lead}{}", parts.join("/"));
    if s.is_empty() { ".".into() } else { s }
}

fn human_readable(size: Value, isbits: Option<bool>, unit: Option<String>) -> Result<String, Error> {
    let n: f64 = match size.kind() {
        ValueKind::Number => f64::try_from(size.clone()).unwrap_or(0.0),
        _ => py_str(&size).trim().parse().map_err(|_| err(format!("human_readable() can't interpret {}", py_str(&size))))?,
    };
    let bits = isbits.unwrap_or(false);
    let (base_unit, suffix) = if bits { ("bits", "b") } else { ("Bytes", "B") };
    let prefixes = ["Y", "Z", "E", "P", "T", "G", "M", "K", ""];
    let mut chosen = ("", 1f64);
    for (i, p) in prefixes.iter().enumerate() {
        let limit = 1u128 << (10 * (prefixes.len() - 1 - i));
        let limit = limit as f64;
        if let Some(u) = &unit {
            if u.starts_with(p) && !p.is_empty() {
                chosen = (p, limit);
                break;
            }
        } else if n >= limit {
            chosen = (p, limit);
            break;
        }
    }
    let v = n / chosen.1;
    let unit_name = if chosen.0.is_empty() { base_unit.to_string() } else { format!("{}{suffix}", chosen.0) };
    Ok(format!("{v:.2} {unit_name}"))
}

fn human_to_bytes(s: Value, default_unit: Option<String>, isbits: Option<bool>) -> Result<i64, Error> {
    let text = py_str(&s);
    let re = regex::Regex::new(r"^\s*(\d*\.?\d*)\s*([A-Za-z]+)?\s*$").expect("static regex");
    let c = re.captures(&text).ok_or_else(|| err(format!("human_to_bytes() can't interpret following string: {text}")))?;
    let num: f64 = c[1].parse().map_err(|_| err(format!("human_to_bytes() can't interpret following string: {text}")))?;
    let unit = c.get(2).map(|m| m.as_str().to_string()).or(default_unit).unwrap_or_default();
    let bits = isbits.unwrap_or(false);
    let letter = unit.chars().next().map(|c| c.to_ascii_uppercase()).unwrap_or('B');
    let power = match letter {
        'B' if !bits => 0,
        'K' => 1,
        'M' => 2,
        'G' => 3,
        'T' => 4,
        'P' => 5,
        'E' => 6,
        'Z' => 7,
        'Y' => 8,
        _ if unit.is_empty() => 0,
        _ => return Err(err(format!("human_to_bytes() failed to convert {text}. Value is not a valid string ({unit})"))),
    };
    if unit.len() > 1 {
        let last = unit.chars().last().unwrap_or('B');
        let ok = if bits { last == 'b' } else { last == 'B' || unit.len() == 1 || unit.eq_ignore_ascii_case("b") };
        if !ok && !(unit.len() == 2 && last == 'B') {
            return Err(err(format!("human_to_bytes() failed to convert {text}. Value is not a valid string ({unit})")));
        }
    }
    Ok((num * 1024f64.powi(power)).round() as i64)
}

/// Registers them.
pub fn register(env: &mut Environment<'static>) {
    // ansible.builtin.vault / unvault: a string encrypted as ansible-vault encrypt_string does.
    env.add_filter("vault", |data: Value, secret: String, salt: Option<Value>, vault_id: Option<String>, kw: Kwargs| -> Result<String, Error> {
        let salt = kw.get::<Option<Value>>("salt")?.or(salt).filter(|v| !v.is_none());
        let vault_id = kw.get::<Option<String>>("vault_id")?.or(kw.get::<Option<String>>("vaultid")?).or(vault_id).unwrap_or_else(|| "filter_default".into());
        if kw.get::<Option<bool>>("wrap_object")?.unwrap_or(false) {
            return Err(err("vault: wrap_object=true is not implemented by recover"));
        }
        kw.assert_all_used()?;
        let text = data.as_str().map(str::to_string).unwrap_or_else(|| data.to_string());
        let label = (vault_id != "default").then_some(vault_id.as_str());
        Ok(match salt {
            Some(s) => {
                let s = s.as_str().map(str::to_string).unwrap_or_else(|| s.to_string());
                if s.is_empty() {
                    return Err(err("vault: empty or invalid salt passed"));
                }
                crate::vault::encrypt_with_salt(text.as_bytes(), secret.as_bytes(), label, s.as_bytes())
            }
            None => crate::vault::encrypt(text.as_bytes(), secret.as_bytes(), label),
        })
    });
    env.add_filter("unvault", |vault: Value, secret: String, _vault_id: Option<String>, kw: Kwargs| -> Result<String, Error> {
        let _ = kw.get::<Option<String>>("vault_id")?;
        let _ = kw.get::<Option<String>>("vaultid")?;
        kw.assert_all_used()?;
        let text = vault.as_str().map(str::to_string).unwrap_or_else(|| vault.to_string());
        if !crate::vault::is_vaulted(text.trim_start().as_bytes()) {
            return Ok(text);
        }
        let plain = crate::vault::decrypt_with(text.trim_start(), secret.as_bytes()).map_err(|e| err(format!("unvault: {e}")))?;
        String::from_utf8(plain).map_err(|_| err("unvault: the plaintext is not UTF-8"))
    });
    env.add_filter("product", |a: Value, b: Value| -> Result<Value, Error> {
        let (x, y) = (items(&a)?, items(&b)?);
        super::bounded(x.len() as u128 * y.len() as u128, "product")?;
        Ok(Value::from(x.iter().flat_map(|i| y.iter().map(move |j| Value::from(vec![i.clone(), j.clone()]))).collect::<Vec<_>>()))
    });
    env.add_filter("combinations", |a: Value, r: usize| -> Result<Value, Error> {
        let pool = items(&a)?;
        // C(n, r), saturating.
        let n = pool.len() as u128;
        let count = if r as u128 > n { 0 } else { (0..r as u128).try_fold(1u128, |acc, i| acc.checked_mul(n - i).map(|x| x / (i + 1))).unwrap_or(u128::MAX) };
        super::bounded(count, "combinations")?;
        let mut out = Vec::new();
        combos(&pool, r, 0, &mut Vec::new(), &mut out);
        Ok(Value::from(out))
    });
    env.add_filter("permutations", |a: Value, r: Option<usize>| -> Result<Value, Error> {
        let pool = items(&a)?;
        let r = r.unwrap_or(pool.len());
        // n! / (n - r)!, saturating.
        let n = pool.len() as u128;
        let count = if r as u128 > n { 0 } else { (0..r as u128).try_fold(1u128, |acc, i| acc.checked_mul(n - i)).unwrap_or(u128::MAX) };
        super::bounded(count, "permutations")?;
        let mut out = Vec::new();
        if r <= pool.len() {
            perms(&pool, r, &mut vec![false; pool.len()], &mut Vec::new(), &mut out);
        }
        Ok(Value::from(out))
    });
    env.add_filter("symmetric_difference", |a: Value, b: Value| -> Result<Value, Error> {
        let (x, y) = (items(&a)?, items(&b)?);
        let mut out: Vec<Value> = Vec::new();
        for i in x.iter().filter(|i| !contains(&y, i)).chain(y.iter().filter(|i| !contains(&x, i))) {
            if !contains(&out, i) {
                out.push(i.clone());
            }
        }
        Ok(Value::from(out))
    });
    env.add_filter("zip_longest", |a: Value, rest: minijinja::value::Rest<Value>, kw: Kwargs| -> Result<Value, Error> {
        let fill = kw.get::<Option<Value>>("fillvalue")?.unwrap_or(Value::from(()));
        kw.assert_all_used()?;
        let mut lists = vec![items(&a)?];
        for r in rest.iter() {
            lists.push(items(r)?);
        }
        let n = lists.iter().map(Vec::len).max().unwrap_or(0);
        Ok(Value::from((0..n).map(|i| Value::from(lists.iter().map(|l| l.get(i).cloned().unwrap_or_else(|| fill.clone())).collect::<Vec<_>>())).collect::<Vec<_>>()))
    });
    env.add_filter("realpath", |p: String| -> String { std::fs::canonicalize(&p).map(|c| c.display().to_string()).unwrap_or_else(|_| normpath(&p)) });
    env.add_filter("relpath", |p: String, start: Option<String>| -> String {
        let cwd = std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_else(|_| "/".into());
        let abs = |x: &str| normpath(&if x.starts_with('/') { x.to_string() } else { format!("{cwd}/{x}") });
        let (p, s) = (abs(&p), abs(&start.unwrap_or_else(|| cwd.clone())));
        let pp: Vec<&str> = p.split('/').filter(|c| !c.is_empty()).collect();
        let sp: Vec<&str> = s.split('/').filter(|c| !c.is_empty()).collect();
        let common = pp.iter().zip(sp.iter()).take_while(|(a, b)| a == b).count();
        let mut rel: Vec<&str> = vec![".."; sp.len() - common];
        rel.extend(&pp[common..]);
        if rel.is_empty() { ".".into() } else { rel.join("/") }
    });
    env.add_filter("path_join", |v: Value| -> Result<String, Error> {
        let parts: Vec<String> = match v.kind() {
            ValueKind::String => vec![py_str(&v)],
            _ => items(&v)?.iter().map(py_str).collect(),
        };
        let mut out = String::new();
        for p in parts {
            if p.starts_with('/') || out.is_empty() {
                out = p;
            } else if out.ends_with('/') {
                out.push_str(&p);
            } else {
                out = format!("{out}/{p}");
            }
        }
        Ok(out)
    });
    env.add_filter("human_readable", human_readable);
    env.add_filter("human_to_bytes", human_to_bytes);
    env.add_filter("checksum", |s: Value| -> String {
        use sha1::Digest;
        format!("{:x}", sha1::Sha1::digest(py_str(&s).as_bytes()))
    });
    env.add_filter("sha1", |s: Value| -> String {
        use sha1::Digest;
        format!("{:x}", sha1::Sha1::digest(py_str(&s).as_bytes()))
    });
    env.add_filter("md5", |s: Value| -> String {
        use md5::Digest;
        format!("{:x}", md5::Md5::digest(py_str(&s).as_bytes()))
    });
    env.add_filter("hash", |s: Value, algo: Option<String>| -> Result<String, Error> {
        use sha2::Digest;
        let b = py_str(&s);
        let b = b.as_bytes();
        Ok(match algo.as_deref().unwrap_or("sha1") {
            "sha1" => format!("{:x}", <sha1::Sha1 as sha1::Digest>::digest(b)),
            "md5" => format!("{:x}", <md5::Md5 as md5::Digest>::digest(b)),
            "sha224" => format!("{:x}", sha2::Sha224::digest(b)),
            "sha256" => format!("{:x}", sha2::Sha256::digest(b)),
            "sha384" => format!("{:x}", sha2::Sha384::digest(b)),
            "sha512" => format!("{:x}", sha2::Sha512::digest(b)),
            other => return Err(err(format!("hash: unsupported algorithm '{other}' (md5, sha1, sha224, sha256, sha384, sha512)"))),
        })
    });
    env.add_filter("extract", |item: Value, container: Value, morekeys: Option<Value>| -> Result<Value, Error> {
        let mut v = container.get_item(&item)?;
        if let Some(k) = morekeys {
            let keys = if k.kind() == ValueKind::Seq { items(&k)? } else { vec![k] };
            for key in keys {
                v = v.get_item(&key)?;
            }
        }
        if v.is_undefined() {
            return Err(err(format!("extract: {} not found", py_str(&item))));
        }
        Ok(v)
    });
    env.add_filter("subelements", |list: Value, key: String, kw: Kwargs| -> Result<Value, Error> {
        let skip = kw.get::<Option<bool>>("skip_missing")?.unwrap_or(false);
        kw.assert_all_used()?;
        let mut out = Vec::new();
        for el in items(&list)? {
            let sub = el.get_attr(&key)?;
            if sub.is_undefined() {
                if skip {
                    continue;
                }
                return Err(err(format!("could not find '{key}' key in iterated item '{}'", py_str(&el))));
            }
            for s in items(&sub)? {
                out.push(Value::from(vec![el.clone(), s]));
            }
        }
        Ok(Value::from(out))
    });
    env.add_filter("urlsplit", |url: String, query: Option<String>| -> Result<Value, Error> {
        let re = regex::Regex::new(r"^(?:([A-Za-z][A-Za-z0-9+.-]*):)?(?://([^/?#]*))?([^?#]*)(?:\?([^#]*))?(?:#(.*))?$").expect("static regex");
        let c = re.captures(&url).ok_or_else(|| err("urlsplit: not a URL"))?;
        let g = |i: usize| c.get(i).map(|m| m.as_str().to_string()).unwrap_or_default();
        let netloc = g(2);
        let (userinfo, hostport) = match netloc.rsplit_once('@') {
            Some((u, h)) => (Some(u.to_string()), h.to_string()),
            None => (None, netloc.clone()),
        };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) if !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()) => (h.to_string(), Some(p.parse::<i64>().unwrap_or(0))),
            _ => (hostport.clone(), None),
        };
        let (user, pass) = match &userinfo {
            Some(u) => match u.split_once(':') {
                Some((a, b)) => (Value::from(a), Value::from(b)),
                None => (Value::from(u.as_str()), Value::from(())),
            },
            None => (Value::from(()), Value::from(())),
        };
        let host_v = if host.is_empty() { Value::from(()) } else { Value::from(host.to_lowercase()) };
        let port_v = port.map(Value::from).unwrap_or(Value::from(()));
        let fields = [
            ("fragment", Value::from(g(5))),
            ("hostname", host_v),
            ("netloc", Value::from(netloc)),
            ("password", pass),
            ("path", Value::from(g(3))),
            ("port", port_v),
            ("query", Value::from(g(4))),
            ("scheme", Value::from(g(1))),
            ("username", user),
        ];
        match query {
            Some(q) => fields.iter().find(|(k, _)| *k == q).map(|(_, v)| v.clone()).ok_or_else(|| err(format!("urlsplit: unknown URL component: {q}"))),
            None => Ok(Value::from_object(fields.iter().map(|(k, v)| (Value::from(*k), v.clone())).collect::<indexmap::IndexMap<Value, Value>>())),
        }
    });
    env.add_filter("to_datetime", |s: String, fmt: Option<String>| -> Result<Value, Error> {
        let fmt = fmt.unwrap_or_else(|| "%Y-%m-%d %H:%M:%S".into());
        let dt = chrono::NaiveDateTime::parse_from_str(&s, &fmt).map_err(|e| err(format!("to_datetime: {e}")))?;
        use chrono::{Datelike, Timelike};
        let m: std::collections::BTreeMap<&str, i64> = [
            ("year", i64::from(dt.year())),
            ("month", i64::from(dt.month())),
            ("day", i64::from(dt.day())),
            ("hour", i64::from(dt.hour())),
            ("minute", i64::from(dt.minute())),
            ("second", i64::from(dt.second())),
        ]
        .into_iter()
        .collect();
        Ok(Value::from_object(m.into_iter().map(|(k, v)| (Value::from(k), Value::from(v))).collect::<std::collections::BTreeMap<Value, Value>>()))
    });
    env.add_filter("strftime", |fmt: String, secs: Option<Value>, kw: Kwargs| -> Result<String, Error> {
        let utc = kw.get::<Option<bool>>("utc")?.unwrap_or(false);
        kw.assert_all_used()?;
        let t = match secs {
            Some(v) => f64::try_from(v.clone()).or_else(|_| py_str(&v).parse::<f64>()).map_err(|_| err("strftime: second must be a number"))?,
            None => chrono::Utc::now().timestamp() as f64,
        };
        let dt = chrono::DateTime::from_timestamp(t as i64, 0).ok_or_else(|| err("strftime: time out of range"))?;
        Ok(if utc { dt.format(&fmt).to_string() } else { dt.with_timezone(&chrono::Local).format(&fmt).to_string() })
    });
    env.add_filter("truncate", |s: String, length: Option<usize>, killwords: Option<bool>, end: Option<String>, leeway: Option<usize>| -> String {
        // Jinja2's truncate.
        let length = length.unwrap_or(255);
        let end = end.unwrap_or_else(|| "...".into());
        let leeway = leeway.unwrap_or(5);
        let n = s.chars().count();
        if n <= length + leeway {
            return s;
        }
        let keep: String = s.chars().take(length.saturating_sub(end.chars().count())).collect();
        if killwords.unwrap_or(false) {
            return format!("{keep}{end}");
        }
        let cut = keep.rsplit_once(' ').map(|(a, _)| a.to_string()).unwrap_or(keep);
        format!("{cut}{end}")
    });
    env.add_filter("center", |s: String, width: Option<usize>| -> String {
        // Python's str.center.
        let width = width.unwrap_or(80);
        let n = s.chars().count();
        if width <= n {
            return s;
        }
        let marg = width - n;
        let left = marg / 2 + (marg & width & 1);
        format!("{}{s}{}", " ".repeat(left), " ".repeat(marg - left))
    });
    env.add_filter("password_hash", password_hash);
    env.add_filter("shuffle", |v: Value, kw: Kwargs| -> Result<Value, Error> {
        let seed = kw.get::<Option<Value>>("seed")?;
        kw.assert_all_used()?;
        let mut list = items(&v)?;
        let mut r = rng(seed.as_ref());
        r.shuffle(&mut list);
        Ok(Value::from(list))
    });
    env.add_filter("random", |v: Value, start: Option<i64>, step: Option<i64>, kw: Kwargs| -> Result<Value, Error> {
        let seed = kw.get::<Option<Value>>("seed")?;
        let start = kw.get::<Option<i64>>("start")?.or(start);
        let step = kw.get::<Option<i64>>("step")?.or(step);
        kw.assert_all_used()?;
        let mut r = rng(seed.as_ref());
        if v.kind() == ValueKind::Number {
            // randrange(start, end, step)
            let end = i64::try_from(v.clone()).map_err(|_| err("random: the end must be an integer"))?;
            let (start, step) = (start.unwrap_or(0), step.unwrap_or(1));
            if step <= 0 || end <= start {
                return Err(err("random: empty range"));
            }
            let n = ((end - start + step - 1) / step) as u64;
            return Ok(Value::from(start + step * r.randbelow(n) as i64));
        }
        let list = items(&v)?;
        if list.is_empty() {
            return Err(err("random: the sequence is empty"));
        }
        Ok(list[r.randbelow(list.len() as u64) as usize].clone())
    });
    env.add_filter("wordcount", |s: String| -> usize { s.split_whitespace().count() });
    env.add_test("subset", |a: Value, b: Value| -> Result<bool, Error> {
        let (x, y) = (items(&a)?, items(&b)?);
        Ok(x.iter().all(|i| contains(&y, i)))
    });
    env.add_test("superset", |a: Value, b: Value| -> Result<bool, Error> {
        let (x, y) = (items(&a)?, items(&b)?);
        Ok(y.iter().all(|i| contains(&x, i)))
    });
    // ansible-core's `contains` is Python's `x in a`: a substring of a string.
    env.add_test("contains", |a: Value, x: Value| -> Result<bool, Error> {
        match (a.as_str(), x.as_str()) {
            (Some(s), Some(sub)) => Ok(s.contains(sub)),
            _ => Ok(contains(&items(&a)?, &x)),
        }
    });
    env.add_test("any", |a: Value| -> Result<bool, Error> { Ok(items(&a)?.iter().any(Value::is_true)) });
    env.add_test("all", |a: Value| -> Result<bool, Error> { Ok(items(&a)?.iter().all(Value::is_true)) });
    env.add_test("truthy", |a: Value, kw: Kwargs| -> Result<bool, Error> {
        let convert = kw.get::<Option<bool>>("convert_bool")?.unwrap_or(false);
        kw.assert_all_used()?;
        if convert {
            if let Some(s) = a.as_str() {
                let l = s.to_lowercase();
                if ["yes", "on", "1", "true"].contains(&l.as_str()) {
                    return Ok(true);
                }
                if ["no", "off", "0", "false"].contains(&l.as_str()) {
                    return Ok(false);
                }
            }
        }
        Ok(a.is_true())
    });
    env.add_test("falsy", |a: Value| -> bool { !a.is_true() });
    env.add_test("nan", |a: Value| -> bool { f64::try_from(a).is_ok_and(f64::is_nan) });
}

/// `password_hash(hashtype='sha512', salt=None, rounds=None)` as ansible-core computes it with
/// passlib: sha512_crypt and sha256_crypt, passlib's default rounds (656000, 535000) written
/// out, 5000 rounds left implicit; without a salt, 16 random characters of crypt's alphabet.
fn password_hash(pw: Value, hashtype: Option<String>, salt: Option<String>, kw: Kwargs) -> Result<String, Error> {
    let hashtype = kw.get::<Option<String>>("hashtype")?.or(hashtype).unwrap_or_else(|| "sha512".into());
    let salt = kw.get::<Option<String>>("salt")?.or(salt);
    let rounds = kw.get::<Option<usize>>("rounds")?;
    let _ = kw.get::<Option<Value>>("ident")?;
    kw.assert_all_used()?;
    let password = py_str(&pw);
    let salt = salt.unwrap_or_else(|| {
        const ALPHA: &[u8] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        let mut s = String::new();
        while s.len() < 16 {
            for b in uuid::Uuid::new_v4().as_bytes() {
                if s.len() < 16 {
                    s.push(ALPHA[(*b as usize) % 64] as char);
                }
            }
        }
        s
    });
    let (id, default_rounds) = match hashtype.as_str() {
        "sha512" | "sha512_crypt" => ("6", 656_000),
        "sha256" | "sha256_crypt" => ("5", 535_000),
        other => return Err(err(format!("password_hash: hash type '{other}' is not supported by recover (sha512, sha256)"))),
    };
    let rounds = rounds.unwrap_or(default_rounds);
    let salt_used: String = salt.chars().take(16).collect();
    let hash = if id == "6" {
        sha_crypt::sha512_crypt_b64(password.as_bytes(), salt_used.as_bytes(), &sha_crypt::Sha512Params::new(rounds).map_err(|e| err(format!("password_hash: {e:?}")))?)
    } else {
        sha_crypt::sha256_crypt_b64(password.as_bytes(), salt_used.as_bytes(), &sha_crypt::Sha256Params::new(rounds).map_err(|e| err(format!("password_hash: {e:?}")))?)
    }
    .map_err(|e| err(format!("password_hash: {e:?}")))?;
    Ok(if rounds == 5000 { format!("${id}${salt_used}${hash}") } else { format!("${id}$rounds={rounds}${salt_used}${hash}") })
}

/// Python's `Random(seed)` (a str or an int seed), or one seeded from the OS without one.
fn rng(seed: Option<&Value>) -> crate::template::pyrandom::PyRandom {
    use crate::template::pyrandom::PyRandom;
    match seed {
        Some(v) if v.kind() == ValueKind::Number => i64::try_from(v.clone()).map(|n| PyRandom::from_int_seed(i128::from(n))).unwrap_or_else(|_| PyRandom::from_str_seed(&py_str(v))),
        Some(v) => PyRandom::from_str_seed(&py_str(v)),
        None => PyRandom::from_str_seed(&uuid::Uuid::new_v4().to_string()),
    }
}
