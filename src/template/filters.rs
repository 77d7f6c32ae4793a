//! The Ansible filters and tests that real role templates use, with Ansible's
//! semantics (Python's `json.dumps`, `shlex.quote`, `re.sub`, `os.path`).

use base64::Engine as _;
use minijinja::value::{Kwargs, Rest, Value, ValueKind};
use minijinja::{Environment, Error, ErrorKind, State};
use serde_json::Value as Json;

use super::globals::{dict_fn, now_fn};
use super::text::{comment, err, py_splitlines};
use super::{json_of, pyjson, yamlout};

/// Registers every filter, test and global function of this module.
pub fn register(env: &mut Environment<'static>) {
    env.add_filter("urlencode", urlencode);
    env.add_filter("map", map_filter);
    env.add_filter("bool", to_bool);
    env.add_filter("int", to_int);
    env.add_filter("to_json", |v: Value, kw: Kwargs| -> Result<String, Error> {
        let sort = kw.get::<Option<bool>>("sort_keys")?.unwrap_or(false);
        let indent = kw.get::<Option<usize>>("indent")?;
        kw.assert_all_used()?;
        Ok(pyjson::dumps(&json_of(&v)?, indent, sort, indent.is_some()))
    });
    env.add_filter("to_nice_json", |v: Value, kw: Kwargs| -> Result<String, Error> {
        let indent = kw.get::<Option<usize>>("indent")?.unwrap_or(4);
        let _ = kw.get::<Option<bool>>("sort_keys")?;
        Ok(pyjson::dumps(&json_of(&v)?, Some(indent), true, true))
    });
    env.add_filter("from_json", |s: String| -> Result<Value, Error> {
        serde_json::from_str::<Json>(&s).map(|j| crate::template::to_value(&j)).map_err(|e| err(format!("from_json: {e}")))
    });
    env.add_filter("from_yaml", |s: String| -> Result<Value, Error> {
        let node = crate::yaml::parse_str(&s, std::path::Path::new("<from_yaml>")).map_err(|e| err(e.message))?;
        Ok(crate::template::to_value(crate::template::strip_unsafe(&node.to_json()).as_ref()))
    });
    env.add_filter("to_yaml", |v: Value, kw: Kwargs| -> Result<String, Error> {
        let indent = kw.get::<Option<usize>>("indent")?.unwrap_or(2);
        let sort = kw.get::<Option<bool>>("sort_keys")?.unwrap_or(true);
        let _ = kw.get::<Option<Value>>("default_flow_style")?;
        let _ = kw.get::<Option<Value>>("width")?;
        let _ = kw.get::<Option<Value>>("allow_unicode")?;
        kw.assert_all_used()?;
        Ok(yamlout::dump_sorted(&json_of(&v)?, indent, false, sort))
    });
    env.add_filter("to_nice_yaml", |v: Value, kw: Kwargs| -> Result<String, Error> {
        let indent = kw.get::<Option<usize>>("indent")?.unwrap_or(4);
        let sort = kw.get::<Option<bool>>("sort_keys")?.unwrap_or(true);
        let _ = kw.get::<Option<Value>>("width")?;
        let _ = kw.get::<Option<Value>>("allow_unicode")?;
        kw.assert_all_used()?;
        Ok(yamlout::dump_sorted(&json_of(&v)?, indent, true, sort))
    });
    // Jinja2's `indent`, exactly: the input's trailing newline is kept.
    env.add_filter("indent", |s: Value, width: Option<Value>, first: Option<bool>, blank: Option<bool>, kw: Kwargs| -> Result<String, Error> {
        let width = match kw.get::<Option<Value>>("width")? {
            Some(w) => Some(w),
            None => width,
        };
        let first = kw.get::<Option<bool>>("first")?.or(kw.get::<Option<bool>>("indentfirst")?).or(first).unwrap_or(false);
        let blank = kw.get::<Option<bool>>("blank")?.or(blank).unwrap_or(false);
        kw.assert_all_used()?;
        let indention = match width {
            None => "    ".to_string(),
            Some(w) if w.kind() == ValueKind::String => w.as_str().unwrap_or_default().to_string(),
            Some(w) => " ".repeat(i64::try_from(w).unwrap_or(4).max(0) as usize),
        };
        let text = format!("{}\n", crate::template::pyrepr::py_str(&s));
        let lines = py_splitlines(&text);
        let mut rv = if blank {
            lines.join(&format!("\n{indention}"))
        } else {
            let mut it = lines.into_iter();
            let mut rv = it.next().unwrap_or_default();
            let rest: Vec<String> = it.map(|l| if l.is_empty() { l } else { format!("{indention}{l}") }).collect();
            if !rest.is_empty() {
                rv.push('\n');
                rv.push_str(&rest.join("\n"));
            }
            rv
        };
        if first {
            rv = format!("{indention}{rv}");
        }
        Ok(rv)
    });
    env.add_filter("regex_replace", regex_replace);
    env.add_filter("regex_search", regex_search);
    env.add_filter("regex_findall", |s: String, pat: String, kw: Kwargs| -> Result<Value, Error> {
        let re = build_regex(&pat, &kw)?;
        let found: Vec<Value> = re
            .captures_iter(&s)
            .map(|c| {
                if c.len() == 1 {
                    Value::from(c.get(0).map_or("", |m| m.as_str()))
                } else if c.len() == 2 {
                    Value::from(c.get(1).map_or("", |m| m.as_str()))
                } else {
                    Value::from((1..c.len()).map(|i| c.get(i).map_or("", |m| m.as_str()).to_string()).collect::<Vec<_>>())
                }
            })
            .collect();
        Ok(Value::from(found))
    });
    env.add_filter("regex_escape", |s: String| regex::escape(&s));
    env.add_filter("quote", |v: Value| Value::from_safe_string(crate::transport::quote::quote(&super::pyrepr::py_str(&v))));
    env.add_filter("b64encode", |s: String| base64::engine::general_purpose::STANDARD.encode(s.as_bytes()));
    env.add_filter("b64decode", |s: String| -> Result<String, Error> {
        let bytes = base64::engine::general_purpose::STANDARD.decode(s.trim()).map_err(|e| err(format!("b64decode: {e}")))?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    });
    env.add_filter("basename", |s: String| match s.rfind('/') {
        Some(i) => s[i + 1..].to_string(),
        None => s,
    });
    env.add_filter("dirname", |s: String| {
        // Python's os.path.dirname: up to the last slash, trailing slashes dropped unless all slashes.
        let head = &s[..s.rfind('/').map_or(0, |i| i + 1)];
        if !head.is_empty() && head.bytes().any(|b| b != b'/') { head.trim_end_matches('/').to_string() } else { head.to_string() }
    });
    env.add_filter("combine", combine);
    env.add_filter("dict2items", |v: Value, kw: Kwargs| -> Result<Value, Error> {
        let kn = kw.get::<Option<String>>("key_name")?.unwrap_or_else(|| "key".into());
        let vn = kw.get::<Option<String>>("value_name")?.unwrap_or_else(|| "value".into());
        let Json::Object(map) = json_of(&v)? else { return Err(err("dict2items requires a dictionary")) };
        let items: Vec<Json> = map.into_iter().map(|(k, v)| serde_json::json!({ kn.clone(): k, vn.clone(): v })).collect();
        Ok(crate::template::to_value(items))
    });
    env.add_filter("items2dict", |v: Value, kw: Kwargs| -> Result<Value, Error> {
        let kn = kw.get::<Option<String>>("key_name")?.unwrap_or_else(|| "key".into());
        let vn = kw.get::<Option<String>>("value_name")?.unwrap_or_else(|| "value".into());
        let Json::Array(items) = json_of(&v)? else { return Err(err("items2dict requires a list")) };
        let mut out = serde_json::Map::new();
        for item in items {
            let k = item.get(&kn).ok_or_else(|| err(format!("items2dict: an item has no '{kn}'")))?;
            let key = match k { Json::String(s) => s.clone(), other => other.to_string() };
            out.insert(key, item.get(&vn).cloned().unwrap_or(Json::Null));
        }
        Ok(crate::template::to_value(Json::Object(out)))
    });
    env.add_filter("mandatory", |v: Value, msg: Option<String>| -> Result<Value, Error> {
        if v.is_undefined() {
            Err(Error::new(ErrorKind::UndefinedError, msg.unwrap_or_else(|| "Mandatory variable not defined.".into())))
        } else {
            Ok(v)
        }
    });
    env.add_filter("ternary", |v: Value, t: Value, f: Value, n: Option<Value>| match (v.is_none(), n) {
        (true, Some(n)) => n,
        _ if v.is_true() => t,
        _ => f,
    });
    env.add_filter("flatten", |v: Value, kw: Kwargs| -> Result<Value, Error> {
        let levels = kw.get::<Option<usize>>("levels")?;
        let mut out = Vec::new();
        flatten_into(&json_of(&v)?, levels, &mut out);
        Ok(crate::template::to_value(out))
    });
    env.add_filter("difference", |a: Value, b: Value| -> Result<Value, Error> { set_op(&a, &b, |inb, _| !inb) });
    env.add_filter("intersect", |a: Value, b: Value| -> Result<Value, Error> { set_op(&a, &b, |inb, _| inb) });
    env.add_filter("union", |a: Value, b: Value| -> Result<Value, Error> {
        let mut out = unique_json(json_list(&a)?);
        for item in json_list(&b)? {
            if !out.contains(&item) {
                out.push(item);
            }
        }
        Ok(crate::template::to_value(out))
    });
    env.add_filter("type_debug", |v: Value| py_type_name(&v));
    env.add_filter("splitext", |s: String| {
        let base = s.rfind('/').map_or(0, |i| i + 1);
        match s[base..].rfind('.') {
            Some(i) if i > 0 => Value::from(vec![s[..base + i].to_string(), s[base + i..].to_string()]),
            _ => Value::from(vec![s.clone(), String::new()]),
        }
    });
    env.add_filter("comment", comment);
    env.add_test("version", super::version::version);
    env.add_test("version_compare", super::version::version);

    // `join`: in a shell string each item is quoted (unless already safe) and the
    // separator kept as it is, so `{{ paths | join(' ') }}` is a safe argv.
    env.add_filter("join", |state: &State, v: Value, sep: Option<String>, kw: Kwargs| -> Result<Value, Error> {
        let attr = kw.get::<Option<String>>("attribute")?;
        kw.assert_all_used()?;
        let sep = sep.unwrap_or_default();
        let shell = *state.auto_escape() == minijinja::AutoEscape::Custom("shell".into());
        if v.kind() == ValueKind::String {
            let chars: Vec<String> = v.as_str().unwrap_or_default().chars().map(String::from).collect();
            return Ok(Value::from(chars.join(&sep)));
        }
        let mut parts = Vec::new();
        for item in v.try_iter()? {
            let item = match &attr {
                Some(a) => item.get_attr(a)?,
                None => item,
            };
            let text = super::pyrepr::py_str(&item);
            parts.push(if shell && !item.is_safe() { crate::transport::quote::quote(&text) } else { text });
        }
        let joined = parts.join(&sep);
        Ok(if shell { Value::from_safe_string(joined) } else { Value::from(joined) })
    });
    // What `systemctl show` reports for a unit's CPUQuota= and MemoryMax= settings.
    env.add_filter("systemd_quota", |s: String| -> Result<String, Error> {
        let pct: f64 = s.trim().trim_end_matches('%').parse().map_err(|_| err(format!("systemd_quota: {s:?} is not a percentage")))?;
        let secs = pct / 100.0;
        Ok(if secs.fract() == 0.0 { format!("{}s", secs as u64) } else { format!("{secs:.6}s").trim_end_matches('0').to_string() })
    });
    env.add_filter("systemd_bytes", |s: String| -> Result<String, Error> {
        let t = s.trim();
        let (num, mult) = match t.chars().last() {
            Some('K') => (&t[..t.len() - 1], 1u64 << 10),
            Some('M') => (&t[..t.len() - 1], 1 << 20),
            Some('G') => (&t[..t.len() - 1], 1 << 30),
            Some('T') => (&t[..t.len() - 1], 1 << 40),
            _ => (t, 1),
        };
        let n: f64 = num.parse().map_err(|_| err(format!("systemd_bytes: {s:?} is not a size like 2G")))?;
        Ok(((n * mult as f64) as u64).to_string())
    });
    // ansible-core's regex tests: `match` anchors at the start, `search` anywhere; `regex` is
    // either (`match_type`); `ignorecase` and `multiline` as Python's flags.
    fn re_test(s: &str, pat: &str, anchored: bool, kw: &Kwargs) -> Result<bool, Error> {
        let ic = kw.get::<Option<bool>>("ignorecase")?.unwrap_or(false);
        let ml = kw.get::<Option<bool>>("multiline")?.unwrap_or(false);
        let anchored = match kw.get::<Option<String>>("match_type")?.as_deref() {
            Some("match") => true,
            Some("search") => false,
            Some(other) => return Err(err(format!("regex: match_type must be match or search, not {other}"))),
            None => anchored,
        };
        kw.assert_all_used()?;
        let flags = format!("{}{}", if ic { "i" } else { "" }, if ml { "m" } else { "" });
        // Python's `re.match` anchors at the start of the text (`\A`), even with MULTILINE.
        let full = if anchored { format!("\\A(?:{pat})") } else { pat.to_string() };
        Ok(crate::pyre::compile_flags(&full, &flags).map(|r| r.is_match(s.as_bytes())).unwrap_or(false))
    }
    env.add_test("match", |s: String, pat: String, kw: Kwargs| re_test(&s, &pat, true, &kw));
    env.add_test("search", |s: String, pat: String, kw: Kwargs| re_test(&s, &pat, false, &kw));
    env.add_test("regex", |s: String, pat: String, kw: Kwargs| re_test(&s, &pat, false, &kw));
    env.add_test("abs", |s: String| s.starts_with('/'));

    env.add_function("dict", dict_fn);
    env.add_function("now", now_fn);
    env.add_function("lookup", super::lookups::lookup);
    env.add_function("query", super::lookups::query);
    env.add_function("q", super::lookups::query);
    // ansible-core 2.19's `undef(hint)`: an undefined value (a variable a role must be given).
    env.add_function("undef", |_hint: Option<Value>| Value::UNDEFINED);
}

fn to_bool(v: Value) -> bool {
    match v.kind() {
        ValueKind::Bool => v.is_true(),
        ValueKind::Number => v.as_i64() == Some(1),
        ValueKind::String => matches!(v.as_str().unwrap_or("").trim().to_lowercase().as_str(), "yes" | "on" | "1" | "true" | "y"),
        _ => false,
    }
}

fn to_int(v: Value, default: Option<i64>, kw: Kwargs) -> Result<i64, Error> {
    let base = kw.get::<Option<u32>>("base")?.unwrap_or(10);
    let default = default.unwrap_or(0);
    Ok(match v.kind() {
        ValueKind::Number => v.as_i64().unwrap_or_else(|| v.to_string().parse::<f64>().map(|f| f as i64).unwrap_or(default)),
        ValueKind::Bool => i64::from(v.is_true()),
        ValueKind::String => {
            let s = v.as_str().unwrap_or("").trim();
            // Python's int(s, base) takes the base's own prefix (0x1F in base 16) and underscores.
            let digits = s.replace('_', "");
            let digits = match base {
                16 => digits.trim_start_matches("0x").trim_start_matches("0X").to_string(),
                8 => digits.trim_start_matches("0o").trim_start_matches("0O").to_string(),
                2 => digits.trim_start_matches("0b").trim_start_matches("0B").to_string(),
                _ => digits,
            };
            i64::from_str_radix(&digits, base).ok().or_else(|| s.parse::<f64>().ok().map(|f| f as i64)).unwrap_or(default)
        }
        _ => default,
    })
}

/// Jinja2's `map`: as minijinja's, except that `map('FILTER', ..., key=value)` hands the keyword
/// arguments on to that filter (`map('map', attribute='path')`), as Jinja2 does.
fn map_filter(state: &mut State, value: Value, args: Rest<minijinja::value::ValueOrKwargs>) -> Result<Value, Error> {
    let vals: Vec<Value> = args.iter().map(|a| Value::from(a.clone())).collect();
    let (pos, kwargs): (&[Value], Kwargs) = minijinja::value::from_args(&vals)?;
    if let (Some(name), true) = (pos.first().and_then(Value::as_str), kwargs.args().next().is_some()) {
        let name = name.to_string();
        let rest = &vals[1..];
        let mut out = Vec::new();
        for item in value.try_iter()? {
            let mut a = vec![item];
            a.extend(rest.iter().cloned());
            out.push(state.apply_filter(&name, &a)?);
        }
        return Ok(Value::from(out));
    }
    Ok(Value::from(minijinja::filters::map(state, value, args)?))
}

fn build_regex(pat: &str, kw: &Kwargs) -> Result<regex::Regex, Error> {
    let icase = kw.get::<Option<bool>>("ignorecase")?.unwrap_or(false);
    let multi = kw.get::<Option<bool>>("multiline")?.unwrap_or(false);
    regex::RegexBuilder::new(pat)
        .case_insensitive(icase)
        .multi_line(multi)
        .build()
        .map_err(|e| err(format!("invalid regular expression {pat:?}: {e}")))
}

fn regex_replace(s: Value, pat: String, rep: Option<String>, kw: Kwargs) -> Result<String, Error> {
    let re = build_regex(&pat, &kw)?;
    let s = super::pyrepr::py_str(&s);
    Ok(re.replace_all(&s, crate::pyre::py_replacement(rep.as_deref().unwrap_or(""))).into_owned())
}

fn regex_search(s: String, pat: String, groups: Rest<String>, kw: Kwargs) -> Result<Value, Error> {
    let re = build_regex(&pat, &kw)?;
    let Some(caps) = re.captures(&s) else { return Ok(Value::from(())) };
    if groups.is_empty() {
        return Ok(Value::from(caps.get(0).map_or("", |m| m.as_str())));
    }
    let mut out = Vec::new();
    for g in groups.iter() {
        let m = if let Some(n) = g.strip_prefix('\\').and_then(|n| n.parse::<usize>().ok()) {
            caps.get(n)
        } else if let Some(name) = g.strip_prefix("\\g<").and_then(|n| n.strip_suffix('>')) {
            caps.name(name)
        } else {
            return Err(err(format!("regex_search: unknown group argument {g:?}")));
        };
        out.push(m.map_or(Value::from(()), |m| Value::from(m.as_str())));
    }
    Ok(Value::from(out))
}

fn combine(first: Value, rest: Rest<Value>, kw: Kwargs) -> Result<Value, Error> {
    let recursive = kw.get::<Option<bool>>("recursive")?.unwrap_or(false);
    let list_merge = kw.get::<Option<String>>("list_merge")?.unwrap_or_else(|| "replace".into());
    let mut acc = json_of(&first)?;
    let mut others = Vec::new();
    for v in rest.iter() {
        match json_of(v)? {
            Json::Array(items) => others.extend(items),
            other => others.push(other),
        }
    }
    for other in others {
        merge_json(&mut acc, other, recursive, &list_merge)?;
    }
    Ok(crate::template::to_value(acc))
}

/// Ansible's `combine`: keys of `b` override `a`; with `recursive`, nested dicts merge.
pub fn merge_json(a: &mut Json, b: Json, recursive: bool, list_merge: &str) -> Result<(), Error> {
    match (a, b) {
        (Json::Object(am), Json::Object(bm)) => {
            for (k, bv) in bm {
                match am.get_mut(&k) {
                    Some(av) if recursive && av.is_object() && bv.is_object() => merge_json(av, bv, true, list_merge)?,
                    Some(Json::Array(al)) if bv.is_array() && list_merge != "replace" => {
                        let Json::Array(bl) = bv else { unreachable!() };
                        match list_merge {
                            "keep" => {}
                            "append" => al.extend(bl),
                            "prepend" => { let mut n = bl; n.append(al); *al = n; }
                            "append_rp" => { al.retain(|x| !bl.contains(x)); al.extend(bl); }
                            "prepend_rp" => { let mut n = bl.clone(); n.extend(al.drain(..).filter(|x| !bl.contains(x))); *al = n; }
                            other => return Err(err(format!("combine: unknown list_merge '{other}'"))),
                        }
                    }
                    _ => { am.insert(k, bv); }
                }
            }
            Ok(())
        }
        _ => Err(err("combine expects dictionaries")),
    }
}

fn flatten_into(v: &Json, levels: Option<usize>, out: &mut Vec<Json>) {
    match v {
        Json::Array(items) => {
            for item in items {
                match (item, levels) {
                    (Json::Array(_), Some(0)) => out.push(item.clone()),
                    (Json::Array(_), _) => flatten_into(item, levels.map(|l| l - 1), out),
                    (Json::Null, _) => {}
                    _ => out.push(item.clone()),
                }
            }
        }
        other => out.push(other.clone()),
    }
}

fn json_list(v: &Value) -> Result<Vec<Json>, Error> {
    match json_of(v)? {
        Json::Array(items) => Ok(items),
        other => Err(err(format!("expected a list, got {other}"))),
    }
}

fn unique_json(items: Vec<Json>) -> Vec<Json> {
    let mut out: Vec<Json> = Vec::new();
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

fn set_op(a: &Value, b: &Value, keep: fn(bool, &Json) -> bool) -> Result<Value, Error> {
    let bl = json_list(b)?;
    let out: Vec<Json> = unique_json(json_list(a)?).into_iter().filter(|x| keep(bl.contains(x), x)).collect();
    Ok(crate::template::to_value(out))
}

/// The lookup plugins `lookup()` and `query()` implement (see `lookups`).
pub use super::lookups::LOOKUPS;


/// Jinja2's `urlencode`: a string (or any scalar, as Python's `str`) quoted with `/` kept; a
/// mapping, or a sequence of pairs, as a query string (`k=v&...`, a space as `+`).
fn urlencode(v: Value) -> Result<String, Error> {
    fn quote(s: &str, for_qs: bool) -> String {
        let mut out = String::with_capacity(s.len());
        for b in s.bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => out.push(b as char),
                b'/' if !for_qs => out.push('/'),
                b' ' if for_qs => out.push('+'),
                _ => out.push_str(&format!("%{b:02X}")),
            }
        }
        out
    }
    let text = |x: &Value| crate::template::pyrepr::py_str(x);
    match v.kind() {
        ValueKind::Map => {
            let mut parts = Vec::new();
            for k in v.try_iter()? {
                let item = v.get_item(&k)?;
                parts.push(format!("{}={}", quote(&text(&k), true), quote(&text(&item), true)));
            }
            Ok(parts.join("&"))
        }
        ValueKind::Seq | ValueKind::Iterable => {
            let mut parts = Vec::new();
            for pair in v.try_iter()? {
                let (k, x) = (pair.get_item(&Value::from(0))?, pair.get_item(&Value::from(1))?);
                parts.push(format!("{}={}", quote(&text(&k), true), quote(&text(&x), true)));
            }
            Ok(parts.join("&"))
        }
        _ => Ok(quote(&text(&v), false)),
    }
}

/// The name of a value's Python type, as `type_debug` and ansible-core's messages give it.
pub fn py_type_name(v: &Value) -> &'static str {
    match v.kind() {
        ValueKind::String => "str",
        ValueKind::Number => if v.is_integer() { "int" } else { "float" },
        ValueKind::Bool => "bool",
        ValueKind::Seq => "list",
        ValueKind::Map => "dict",
        ValueKind::None => "NoneType",
        _ => "AnsibleUndefined",
    }
}
