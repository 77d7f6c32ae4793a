//! Python's `json.dumps`, which Ansible's `to_json` and `to_nice_json` call:
//! `", "` and `": "` separators inline, `","` plus newlines when indented,
//! non-ASCII escaped as `\uXXXX` (`ensure_ascii=True`).

use serde_json::Value as Json;

/// `json.dumps(v, indent=indent, sort_keys=sort)`; `nice` selects `(',', ': ')` separators.
pub fn dumps(v: &Json, indent: Option<usize>, sort: bool, nice: bool) -> String {
    let mut out = String::new();
    write(&mut out, v, &Opts { indent, sort, nice, ascii: true }, 0);
    out
}

/// The same with `ensure_ascii=False` (non-ASCII written as UTF-8), as `ansible-inventory` prints.
pub fn dumps_utf8(v: &Json, indent: Option<usize>, sort: bool, nice: bool) -> String {
    let mut out = String::new();
    write(&mut out, v, &Opts { indent, sort, nice, ascii: false }, 0);
    out
}

struct Opts {
    indent: Option<usize>,
    sort: bool,
    nice: bool,
    ascii: bool,
}

fn write(out: &mut String, v: &Json, o: &Opts, level: usize) {
    let (indent, sort, nice) = (o.indent, o.sort, o.nice);
    let item_sep = if indent.is_some() || nice { "," } else { ", " };
    let newline = |out: &mut String, level: usize| {
        if let Some(n) = indent {
            out.push('\n');
            out.push_str(&" ".repeat(n * level));
        }
    };
    match v {
        Json::Null => out.push_str("null"),
        Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Json::Number(n) => {
            if let Some(f) = n.as_f64().filter(|_| n.is_f64()) {
                out.push_str(&py_float(f));
            } else {
                out.push_str(&n.to_string());
            }
        }
        Json::String(s) => write_str(out, s, o.ascii),
        Json::Array(items) => {
            if items.is_empty() {
                out.push_str("[]");
                return;
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                newline(out, level + 1);
                write(out, item, o, level + 1);
            }
            newline(out, level);
            out.push(']');
        }
        Json::Object(map) => {
            if map.is_empty() {
                out.push_str("{}");
                return;
            }
            let mut keys: Vec<&String> = map.keys().collect();
            if sort {
                keys.sort();
            }
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                newline(out, level + 1);
                write_str(out, k, o.ascii);
                out.push_str(": ");
                write(out, &map[k.as_str()], o, level + 1);
            }
            newline(out, level);
            out.push('}');
        }
    }
}

/// Python's float repr: `1.0`, `0.5`, `1e+20`, `inf`.
pub fn py_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity".into() } else { "-Infinity".into() };
    }
    let s = format!("{f:?}");
    if s.contains('e') {
        let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
        let e: i32 = e.parse().unwrap_or(0);
        return format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs());
    }
    s
}

fn write_str(out: &mut String, s: &str, ascii: bool) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (ascii && (c as u32) > 0x7e) => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn matches_python_json_dumps() {
        let v = json!({"b": [1, 2.5, "x"], "a": {"k": null, "t": true}, "u": "日期"});
        assert_eq!(dumps(&v, None, false, false), r#"{"b": [1, 2.5, "x"], "a": {"k": null, "t": true}, "u": "\u65e5\u671f"}"#);
        assert_eq!(
            dumps(&json!({"b": 1, "a": [1]}), Some(4), true, true),
            "{\n    \"a\": [\n        1\n    ],\n    \"b\": 1\n}"
        );
    }
}
