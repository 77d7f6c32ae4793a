//! PyYAML's `yaml.dump` as Ansible's `to_yaml` (flow style for leaf
//! collections) and `to_nice_yaml` (block style, `indent=4`) call it.
//! Keys are sorted, as PyYAML sorts them by default.

use serde_json::Value as Json;

thread_local! {
    /// `sort_keys` of the dump under way (PyYAML's default: sorted).
    static SORT: std::cell::Cell<bool> = const { std::cell::Cell::new(true) };
}

/// As [`dump`], with PyYAML's `sort_keys` (False keeps the mapping's own order).
pub fn dump_sorted(v: &Json, indent: usize, block: bool, sort_keys: bool) -> String {
    let before = SORT.with(|s| s.replace(sort_keys));
    let out = dump(v, indent, block);
    SORT.with(|s| s.set(before));
    out
}

/// Dumps `v`; `block` selects `default_flow_style=False`.
pub fn dump(v: &Json, indent: usize, block: bool) -> String {
    let mut out = String::new();
    match v {
        Json::Array(a) if !a.is_empty() && (block || !is_leaf(v)) => seq(&mut out, a, indent, 0, block),
        Json::Object(m) if !m.is_empty() && (block || !is_leaf(v)) => map(&mut out, m, indent, 0, block),
        Json::Array(_) | Json::Object(_) => {
            out.push_str(&flow(v));
            out.push('\n');
        }
        scalar => {
            out.push_str(&scalar_text(scalar));
            out.push_str("\n...\n");
        }
    }
    out
}

fn is_leaf(v: &Json) -> bool {
    match v {
        Json::Array(a) => a.iter().all(|x| !x.is_array() && !x.is_object()),
        Json::Object(m) => m.values().all(|x| !x.is_array() && !x.is_object()),
        _ => true,
    }
}

fn sorted(m: &serde_json::Map<String, Json>) -> Vec<(&String, &Json)> {
    let mut items: Vec<_> = m.iter().collect();
    if SORT.with(|s| s.get()) {
        items.sort_by(|a, b| a.0.cmp(b.0));
    }
    items
}

fn map(out: &mut String, m: &serde_json::Map<String, Json>, indent: usize, level: usize, block: bool) {
    for (i, (k, v)) in sorted(m).into_iter().enumerate() {
        if i > 0 || level > 0 {
            out.push_str(&" ".repeat(level));
        }
        out.push_str(&scalar_text(&Json::String(k.clone())));
        out.push(':');
        value_after_key(out, v, indent, level, block);
    }
}

fn value_after_key(out: &mut String, v: &Json, indent: usize, level: usize, block: bool) {
    match v {
        Json::Object(m) if !m.is_empty() && (block || !is_leaf(v)) => {
            out.push('\n');
            map(out, m, indent, level + indent, block);
        }
        Json::Array(a) if !a.is_empty() && (block || !is_leaf(v)) => {
            out.push('\n');
            seq(out, a, indent, level, block);
        }
        other => {
            out.push(' ');
            out.push_str(&inline(other));
            out.push('\n');
        }
    }
}

fn seq(out: &mut String, a: &[Json], indent: usize, level: usize, block: bool) {
    for item in a {
        out.push_str(&" ".repeat(level));
        seq_item(out, item, indent, level, block);
    }
}

fn is_block(v: &Json, block: bool) -> bool {
    match v {
        Json::Object(m) => !m.is_empty() && (block || !is_leaf(v)),
        Json::Array(a) => !a.is_empty() && (block || !is_leaf(v)),
        _ => false,
    }
}

/// One `- item` of a block sequence, the cursor already indented to `level`.
/// PyYAML writes a scalar as `- x`, and a collection after `-` padded to the indent width.
fn seq_item(out: &mut String, item: &Json, indent: usize, level: usize, block: bool) {
    if !is_block(item, block) {
        out.push_str("- ");
        out.push_str(&inline(item));
        out.push('\n');
        return;
    }
    let dash = format!("-{}", " ".repeat(indent.saturating_sub(1).max(1)));
    out.push_str(&dash);
    let inner = level + dash.len();
    match item {
        Json::Object(m) => {
            for (i, (k, v)) in sorted(m).into_iter().enumerate() {
                if i > 0 {
                    out.push_str(&" ".repeat(inner));
                }
                out.push_str(&scalar_text(&Json::String(k.clone())));
                out.push(':');
                value_after_key(out, v, indent, inner, block);
            }
        }
        Json::Array(items) => {
            // The nested list's first item goes on this line.
            seq_item(out, &items[0], indent, inner, block);
            seq(out, &items[1..], indent, inner, block);
        }
        _ => {}
    }
}

fn inline(v: &Json) -> String {
    match v {
        Json::Array(_) | Json::Object(_) => flow(v),
        s => scalar_text(s),
    }
}

fn flow(v: &Json) -> String {
    match v {
        Json::Array(a) => format!("[{}]", a.iter().map(flow).collect::<Vec<_>>().join(", ")),
        Json::Object(m) => format!(
            "{{{}}}",
            sorted(m).into_iter().map(|(k, v)| format!("{}: {}", scalar_text(&Json::String(k.clone())), flow(v))).collect::<Vec<_>>().join(", ")
        ),
        s => scalar_text(s),
    }
}

fn scalar_text(v: &Json) -> String {
    match v {
        Json::Null => "null".into(),
        Json::Bool(b) => (if *b { "true" } else { "false" }).into(),
        Json::Number(n) => match n.as_f64().filter(|_| n.is_f64()) {
            Some(f) => super::pyjson::py_float(f).to_lowercase().replace("infinity", ".inf").replace("nan", ".nan"),
            None => n.to_string(),
        },
        Json::String(s) => string_text(s),
        other => flow(other),
    }
}

fn string_text(s: &str) -> String {
    if s.contains('\n') || s.chars().any(|c| c.is_control() && c != '\t') {
        let mut out = String::from("\"");
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
                c => out.push(c),
            }
        }
        out.push('"');
        return out;
    }
    if needs_quotes(s) {
        format!("'{}'", s.replace('\'', "''"))
    } else {
        s.to_string()
    }
}

fn needs_quotes(s: &str) -> bool {
    if s.is_empty() || s != s.trim() {
        return true;
    }
    let lower = s.to_lowercase();
    if matches!(lower.as_str(), "null" | "~" | "true" | "false" | "yes" | "no" | "on" | "off" | ".inf" | "-.inf" | ".nan") {
        return true;
    }
    if s.parse::<f64>().is_ok() || s.starts_with("0x") || s.starts_with("0o") {
        return true;
    }
    let first = s.chars().next().unwrap_or(' ');
    if "-?:,[]{}#&*!|>'\"%@`".contains(first) {
        return !(first == '-' && s.len() > 1 && !s[1..].starts_with(' ')) || s == "-";
    }
    s.contains(": ") || s.contains(" #") || s.ends_with(':')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nice_yaml_like_pyyaml() {
        let v = json!({"b": ["x", "y"], "a": {"k": "yes", "n": 1}});
        assert_eq!(dump(&v, 4, true), "a:\n    k: 'yes'\n    n: 1\nb:\n- x\n- y\n");
        // Collections in lists, as ansible-core 2.19 (PyYAML) writes them.
        let nested = json!({"a": [{"x": 1, "y": [1, 2]}, [3, 4], "z"]});
        assert_eq!(dump(&nested, 4, true), "a:\n-   x: 1\n    y:\n    - 1\n    - 2\n-   - 3\n    - 4\n- z\n");
        assert_eq!(dump(&nested, 2, true), "a:\n- x: 1\n  y:\n  - 1\n  - 2\n- - 3\n  - 4\n- z\n");
        assert_eq!(dump(&nested, 2, false), "a:\n- x: 1\n  y: [1, 2]\n- [3, 4]\n- z\n");
        assert_eq!(dump(&v, 2, false), "a: {k: 'yes', n: 1}\nb: [x, y]\n");
    }
}
