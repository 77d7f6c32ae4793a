//! PyYAML's `yaml.dump` as Ansible's `to_yaml` (flow style for leaf
//! collections) and `to_nice_yaml` (block style, `indent=4`) call it.
//! Keys are sorted, as PyYAML sorts them by default.

use serde_json::Value as Json;

thread_local! {
    /// `sort_keys` of the dump under way (PyYAML's default: sorted).
    static SORT: std::cell::Cell<bool> = const { std::cell::Cell::new(true) };
    /// Shared objects of the dump under way: id -> anchor number (0 until it has one), and
    /// whether it was written already.
    static ANCHORS: std::cell::RefCell<std::collections::HashMap<u64, (usize, bool)>> = std::cell::RefCell::new(Default::default());
}

const SHARED_KEY: &str = "__recover_yaml_shared";

/// `v` as one object that may appear more than once in a dump (the same Python object, to
/// PyYAML): the first time it is written with an anchor `&id001`, then as the alias `*id001`.
pub fn shared(id: u64, v: Json) -> Json {
    serde_json::json!({ SHARED_KEY: id, "value": v })
}

fn as_shared(v: &Json) -> Option<(u64, &Json)> {
    let m = v.as_object()?;
    if m.len() != 2 {
        return None;
    }
    Some((m.get(SHARED_KEY)?.as_u64()?, m.get("value")?))
}

/// As PyYAML's serializer: walk in output order; an object met a second time gets the next
/// anchor number.
fn number_anchors(v: &Json, seen: &mut std::collections::HashMap<u64, (usize, bool)>, next: &mut usize) {
    if let Some((id, inner)) = as_shared(v) {
        match seen.get_mut(&id) {
            Some((n, _)) => {
                if *n == 0 {
                    *next += 1;
                    *n = *next;
                }
            }
            None => {
                seen.insert(id, (0, false));
                number_anchors(inner, seen, next);
            }
        }
        return;
    }
    match v {
        Json::Array(a) => a.iter().for_each(|x| number_anchors(x, seen, next)),
        Json::Object(m) => sorted(m).into_iter().for_each(|(_, x)| number_anchors(x, seen, next)),
        _ => {}
    }
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
    let mut table = Default::default();
    number_anchors(v, &mut table, &mut 0);
    ANCHORS.with(|a| *a.borrow_mut() = table);
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
    let v = match as_shared(v) {
        Some((id, inner)) => {
            let (n, written) = ANCHORS.with(|a| a.borrow().get(&id).copied()).unwrap_or((0, false));
            if n > 0 && written {
                out.push_str(&format!(" *id{n:03}\n"));
                return;
            }
            if n > 0 {
                ANCHORS.with(|a| a.borrow_mut().insert(id, (n, true)));
                out.push_str(&format!(" &id{n:03}"));
            }
            inner
        }
        None => v,
    };
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
            push_scalar(out, other, level + indent);
            out.push('\n');
        }
    }
}

/// A block value after `key:` or `-`: a space, then the scalar as PyYAML's emitter writes it,
/// folding a long plain or single-quoted string at a space past column 80 and writing a
/// multi-line string single-quoted, continued at `indent`.
fn push_scalar(out: &mut String, v: &Json, indent: usize) {
    let Json::String(s) = v else {
        out.push(' ');
        out.push_str(&inline(v));
        return;
    };
    let special = s.chars().any(|c| c != '\n' && (c.is_control() || c == '\u{feff}'));
    // PyYAML writes a multi-line string single-quoted unless a space touches a line break.
    let multi_single = s.contains('\n') && !special && !s.contains(" \n") && !s.contains("\n ");
    let text = if multi_single { format!("'{s}'") } else { string_text(s) };
    let quoted = text.starts_with('\'');
    if text.starts_with('"') {
        out.push(' ');
        out.push_str(&text);
        return;
    }
    let mut col = out.rsplit('\n').next().map_or(0, |l| l.chars().count());
    out.push(' ');
    col += 1;
    let chars: Vec<char> = if quoted { s.chars().collect() } else { text.chars().collect() };
    if quoted {
        out.push('\'');
        col += 1;
    }
    // PyYAML's write_plain / write_single_quoted, with its column and indent bookkeeping.
    let (mut spaces, mut breaks) = (false, false);
    let (mut start, mut end) = (0usize, 0usize);
    let mut indention = false;
    let mut whitespace = false;
    let write_indent = |out: &mut String, col: &mut usize, indention: &mut bool, whitespace: &mut bool| {
        if !*indention || *col > indent || (*col == indent && !*whitespace) {
            out.push('\n');
            *col = 0;
            *indention = true;
            *whitespace = true;
        }
        if *col < indent {
            out.push_str(&" ".repeat(indent - *col));
            *col = indent;
            *whitespace = true;
        }
    };
    while end <= chars.len() {
        let ch = chars.get(end).copied();
        if spaces {
            if ch != Some(' ') {
                if start + 1 == end && col > 80 && (!quoted || (start != 0 && end != chars.len())) {
                    write_indent(out, &mut col, &mut indention, &mut whitespace);
                    indention = false;
                    whitespace = false;
                } else {
                    let data: String = chars[start..end].iter().collect();
                    col += end - start;
                    out.push_str(&data);
                }
                start = end;
            }
        } else if breaks {
            if !matches!(ch, Some('\n')) {
                if chars[start] == '\n' {
                    out.push('\n');
                    col = 0;
                }
                for _ in start..end {
                    out.push('\n');
                    col = 0;
                }
                indention = true;
                whitespace = true;
                write_indent(out, &mut col, &mut indention, &mut whitespace);
                indention = false;
                whitespace = false;
                start = end;
            }
        } else if ch.is_none() || matches!(ch, Some(' ' | '\n')) || (quoted && ch == Some('\'')) {
            if start < end {
                let data: String = chars[start..end].iter().collect();
                col += end - start;
                out.push_str(&data);
                whitespace = false;
                indention = false;
                start = end;
            }
        }
        if quoted && ch == Some('\'') {
            out.push_str("''");
            col += 2;
            start = end + 1;
        }
        if let Some(c) = ch {
            spaces = c == ' ';
            breaks = c == '\n';
        }
        end += 1;
    }
    if quoted {
        out.push('\'');
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
        out.push('-');
        push_scalar(out, item, level + indent);
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
    let special = s.chars().any(|c| c != '\n' && (c.is_control() || c == '\u{feff}'));
    if s.contains('\n') || special {
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
