//! How Ansible (Python's Jinja2) prints values: `True`, `None`, `['a', 1]`,
//! `{'k': 'v'}`. Templates rendered by `recover` must match Ansible's output
//! byte for byte, so the formatter prints through here.

use minijinja::value::{Value, ValueKind};

/// What `{{ value }}` prints in Ansible 2.19: strings as they are, `None` as
/// nothing, everything else as Python's `repr`.
pub fn py_str(v: &Value) -> String {
    match v.kind() {
        ValueKind::String => v.as_str().unwrap_or_default().to_string(),
        ValueKind::None => String::new(),
        _ => py_repr(v),
    }
}

/// `repr(value)` in Python.
pub fn py_repr(v: &Value) -> String {
    let mut out = String::new();
    write_repr(&mut out, v);
    out
}

fn write_repr(out: &mut String, v: &Value) {
    match v.kind() {
        ValueKind::Undefined | ValueKind::None => out.push_str("None"),
        ValueKind::Bool => out.push_str(if v.is_true() { "True" } else { "False" }),
        ValueKind::Number => {
            let s = v.to_string();
            out.push_str(&s);
        }
        ValueKind::String => quote_py(out, v.as_str().unwrap_or_default()),
        ValueKind::Seq | ValueKind::Iterable => {
            out.push('[');
            if let Ok(iter) = v.try_iter() {
                for (i, item) in iter.enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    write_repr(out, &item);
                }
            }
            out.push(']');
        }
        ValueKind::Map => {
            out.push('{');
            if let Ok(iter) = v.try_iter() {
                for (i, key) in iter.enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    write_repr(out, &key);
                    out.push_str(": ");
                    let val = v.get_item(&key).unwrap_or(Value::UNDEFINED);
                    write_repr(out, &val);
                }
            }
            out.push('}');
        }
        _ => out.push_str(&v.to_string()),
    }
}

/// Python's string repr: single quotes unless the text has a single quote and no double one.
fn quote_py(out: &mut String, s: &str) {
    let q = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
    out.push(q);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == q => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push(q);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_reprs() {
        let v = crate::template::to_value(serde_json::json!({"a": [1, "x", true, null], "b": "it's"}));
        assert_eq!(py_repr(&v), r#"{'a': [1, 'x', True, None], 'b': "it's"}"#);
        assert_eq!(py_str(&Value::from(false)), "False");
        assert_eq!(py_str(&Value::from("plain")), "plain");
    }
}
