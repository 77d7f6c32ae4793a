//! Lookups over data: lists, dicts, sequences, products, subelements, variables, the
//! inventory's host names, a random choice.

use serde_json::Value as Json;
use minijinja::value::{Kwargs, Value};
use minijinja::{Error, State};

use super::*;

/// The lookups of this file: `None` when `kind` is not one of them.
pub(super) fn run(state: &State, kind: &str, terms: &[Value], kw: &Kwargs) -> Result<Option<Vec<Value>>, Error> {
    Ok(Some(match kind {
        "items" => flat(terms),
        // ansible-core's `list` returns its terms as they are (`items` flattens one level).
        "list" => terms.to_vec(),
        "dict" => {
            let mut out = Vec::new();
            for t in terms {
                if t.kind() != ValueKind::Map {
                    let class = match t.kind() {
                        ValueKind::Seq => "list",
                        ValueKind::String => "str",
                        ValueKind::Number => if t.as_i64().is_some() { "int" } else { "float" },
                        ValueKind::Bool => "bool",
                        _ => "NoneType",
                    };
                    return Err(err(format!("the 'dict' lookup plugin expects a dictionary, got '{}' of type <class '{class}'>)", py_str(t))));
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
            // ansible-core's options are integers (0x hex and 0o octal too): another value "has an invalid value".
            let num_of = |name: &str, v: &Value| -> Result<i64, Error> {
                let s = py_str(v);
                let t = s.trim();
                let parsed = if let Some(h) = t.strip_prefix("0x") { i64::from_str_radix(h, 16).ok() } else if let Some(o) = t.strip_prefix("0o") { i64::from_str_radix(o, 8).ok() } else { t.parse().ok() };
                parsed.ok_or_else(|| err(format!("Option '{name}' has an invalid value: {s:?} is not an integer")))
            };
            // No term and no keyword: nothing (ansible-core gives an empty list).
            if terms.is_empty() && kstart.is_none() && kend.is_none() && kcount.is_none() && kstride.is_none() {
                return Ok(Some(Vec::new()));
            }
            if terms.is_empty() {
                let start = kstart.as_ref().map(|v| num_of("start", v)).transpose()?.unwrap_or(1);
                let stride = kstride.as_ref().map(|v| num_of("stride", v)).transpose()?.unwrap_or(1);
                let end = match (&kend, &kcount) {
                    (Some(e), None) => num_of("end", e)?,
                    (None, Some(c)) => match num_of("count", c)? {
                        0 => return Ok(Some(Vec::new())),
                        c => start + c * stride - 1,
                    },
                    (Some(_), Some(_)) => return Err(err("can't specify both count and end in with_sequence")),
                    (None, None) => return Err(err("must specify count or end in with_sequence")),
                };
                specs.push((start, end, stride, kfmt.clone().unwrap_or_else(|| "%d".into())));
            }
            for t in terms {
                // "start-end/stride:format" or "start=1 end=10 stride=2 format=..."
                let s = py_str(t);
                // The keyword arguments are every term's defaults, as in ansible-core.
                let mut start = kstart.as_ref().map(|v| num_of("start", v)).transpose()?.unwrap_or(1);
                let mut end = kend.as_ref().map(|v| num_of("end", v)).transpose()?;
                let mut stride = kstride.as_ref().map(|v| num_of("stride", v)).transpose()?.unwrap_or(1);
                let mut fmt = kfmt.clone().unwrap_or_else(|| "%d".to_string());
                let kw_count = kcount.as_ref().map(|v| num_of("count", v)).transpose()?;
                if s.contains('=') {
                    let mut count = kw_count;
                    for w in s.split_whitespace() {
                        let (k, v) = w.split_once('=').ok_or_else(|| err(format!("bad sequence term {s:?}")))?;
                        match k {
                            "start" => start = num_of("start", &Value::from(v))?,
                            "end" => end = Some(num_of("end", &Value::from(v))?),
                            "count" => count = Some(num_of("count", &Value::from(v))?),
                            "stride" => stride = num_of("stride", &Value::from(v))?,
                            "format" => fmt = v.to_string(),
                            other => return Err(err(format!("unrecognized arguments to with_sequence: {other}"))),
                        }
                    }
                    match (count, end) {
                        (Some(_), Some(_)) => return Err(err("can't specify both count and end in with_sequence")),
                        (Some(0), None) => continue,
                        (Some(c), None) => end = Some(start + c * stride - 1),
                        _ => {}
                    }
                } else {
                    let (range, f) = s.split_once(':').map(|(a, b)| (a.to_string(), Some(b.to_string()))).unwrap_or((s.clone(), None));
                    if let Some(f) = f {
                        fmt = f;
                    }
                    let (range, st) = range.split_once('/').map(|(a, b)| (a.to_string(), Some(b.to_string()))).unwrap_or((range, None));
                    if let Some(st) = st {
                        stride = num_of("stride", &Value::from(st))?;
                    }
                    match range.split_once('-') {
                        Some((a, b)) if !a.is_empty() => {
                            start = num_of("start", &Value::from(a))?;
                            end = Some(num_of("end", &Value::from(b))?);
                        }
                        _ => end = Some(num_of("end", &Value::from(range.as_str()))?),
                    }
                }
                specs.push((start, end.ok_or_else(|| err("must specify count or end in with_sequence"))?, stride, fmt));
            }
            // ansible-core's sanity_check.
            for (start, end, stride, fmt) in &specs {
                if *stride > 0 && end < start {
                    return Err(err("to count backwards make stride negative"));
                }
                if *stride < 0 && end > start {
                    return Err(err("to count forward don't make stride negative"));
                }
                if *stride != 0 && fmt.matches('%').count() != 1 {
                    return Err(err(format!("bad formatting string: {fmt}")));
                }
            }
            let count: u128 = specs
                .iter()
                .filter(|(_, _, stride, _)| *stride != 0)
                .map(|(start, end, stride, _)| {
                    let span = (*end as i128 - *start as i128) / *stride as i128;
                    if span < 0 { 0 } else { span as u128 + 1 }
                })
                .sum();
            crate::template::bounded(count, "the sequence lookup")?;
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
            // ansible-core's: a dotted key reaches into nested mappings; the list it names is
            // taken out of the item (`item.0` no longer holds it).
            let (list, key) = match terms {
                [l, k] | [l, k, _] if k.as_str().is_some() && matches!(l.kind(), ValueKind::Seq | ValueKind::Map) => (l.clone(), py_str(k)),
                [_, _] | [_, _, _] => return Err(err("subelements lookup expects a list of two or three items, first a dict or a list, second a string pointing to the subkey")),
                _ => return Err(err("subelements lookup expects a list of two or three items")),
            };
            if terms.get(2).is_some_and(|f| f.kind() != ValueKind::Map) {
                return Err(err("subelements lookup expects a list of two or three items, the optional third item must be a dict with flags skip_missing"));
            }
            let skip = terms.get(2).is_some_and(|f| f.get_attr("skip_missing").is_ok_and(|v| v.is_true()));
            let list: Json = serde_json::to_value(&list).map_err(|e| err(e.to_string()))?;
            let elements: Vec<Json> = match list {
                Json::Object(m) if m.get("skipped").is_some_and(|v| v != &Json::Bool(false)) => Vec::new(),
                Json::Object(m) => m.into_iter().map(|(_, v)| v).collect(),
                Json::Array(a) => a,
                _ => Vec::new(),
            };
            let keys: Vec<&str> = key.split('.').collect();
            let mut out = Vec::new();
            for mut item0 in elements {
                if !item0.is_object() {
                    return Err(err(format!("subelements lookup expects a dictionary, got '{}'", py_str(&crate::template::to_value(&item0)))));
                }
                if item0.get("skipped").is_some_and(|v| v != &Json::Bool(false)) {
                    continue;
                }
                let mut sublist = Vec::new();
                let mut found = false;
                let mut cur = &item0;
                for (i, k) in keys.iter().enumerate() {
                    let last = i + 1 == keys.len();
                    let Some(m) = cur.as_object() else { break };
                    let Some(v) = m.get(*k) else {
                        if skip {
                            break;
                        }
                        return Err(err(format!("could not find '{k}' key in iterated item '{}'", py_str(&crate::template::to_value(cur)))));
                    };
                    if !last {
                        if !v.is_object() {
                            if skip {
                                break;
                            }
                            return Err(err(format!("the key {k} should point to a dictionary, got '{}'", py_str(&crate::template::to_value(v)))));
                        }
                        cur = v;
                    } else if v.is_array() {
                        found = true;
                    } else {
                        return Err(err(format!("the key {k} should point to a list, got '{}'", py_str(&crate::template::to_value(v)))));
                    }
                }
                if found {
                    let mut cur = &mut item0;
                    for k in &keys[..keys.len() - 1] {
                        cur = cur.get_mut(*k).expect("found above");
                    }
                    if let Some(Json::Array(a)) = cur.as_object_mut().and_then(|m| m.shift_remove(keys[keys.len() - 1])) {
                        sublist = a;
                    }
                }
                let v0 = crate::template::to_value(&item0);
                for item1 in sublist {
                    out.push(Value::from(vec![v0.clone(), crate::template::to_value(&item1)]));
                }
            }
            out
        }
        "together" => {
            if terms.is_empty() {
                return Err(err("with_together requires at least one element in each list"));
            }
            let lists: Vec<Vec<Value>> = terms.iter().map(seq).collect();
            let n = lists.iter().map(Vec::len).max().unwrap_or(0);
            (0..n).map(|i| Value::from(lists.iter().map(|l| l.get(i).cloned().unwrap_or(Value::from(()))).collect::<Vec<_>>())).collect()
        }
        "nested" => {
            let count = terms.iter().try_fold(1u128, |acc, l| acc.checked_mul(seq(l).len() as u128)).unwrap_or(u128::MAX);
            crate::template::bounded(count, "the nested lookup")?;
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
                if t.as_str().is_none() {
                    return Err(err(format!("Variable name must be 'str' not '{}'", crate::template::filters::py_type_name(&t))));
                }
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
                // ansible-core's checks and messages: a string, and a pattern Python's `re` takes.
                if t.as_str().is_none() {
                    let class = match t.kind() {
                        ValueKind::Bool => "bool",
                        ValueKind::Number => if t.as_i64().is_some() { "int" } else { "float" },
                        ValueKind::Seq => "list",
                        ValueKind::Map => "dict",
                        _ => "NoneType",
                    };
                    return Err(err(format!("Invalid setting identifier, \"{}\" is not a string, it is a <class '{class}'>", py_str(&t))));
                }
                let pat = py_str(&t);
                let re = crate::pyre::compile(&pat).map_err(|e| {
                    let why = if e.contains("repetition operator missing expression") || e.contains("nothing to repeat") { "nothing to repeat at position 0".to_string() } else { e };
                    err(format!("Unable to use \"{pat}\" as a search parameter: {why}"))
                })?;
                out.extend(names.iter().filter(|n| re.find(n.as_bytes()).is_some_and(|m| m.start() == 0)).map(|n| Value::from(n.as_str())));
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
        _ => return Ok(None),
    }))
}
