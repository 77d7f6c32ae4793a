//! YAML with a source position on every node.
//!
//! Built from saphyr-parser's events rather than a serde mapping so that every
//! value keeps its `file:line:col` for error messages, scalars are resolved the
//! way Ansible (PyYAML, YAML 1.1) resolves them (`yes`/`no`/`on`/`off` are
//! booleans), merge keys (`<<`) work, and hostile documents are refused:
//! alias expansion and nesting depth are bounded (a "billion laughs" file is an
//! error, not an out-of-memory).

use std::path::Path;
use std::sync::Arc;

use saphyr_parser::{Event, Parser, ScalarStyle};
use serde_json::Value as Json;

use crate::error::{SResult, SourceError, Span};

/// At most this many nodes in one file, counting the ones aliases copy.
pub const MAX_NODES: usize = 1_000_000;
/// At most this deep nesting of sequences and mappings.
pub const MAX_DEPTH: usize = 256;

/// One YAML value and where it starts.
#[derive(Clone, Debug)]
pub struct Node {
    pub span: Span,
    pub value: Value,
}

/// The data of a node. Mapping keys keep their order and their spans.
#[derive(Clone, Debug)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// A string tagged `!unsafe`: data, never rendered as a template (as Ansible honours it).
    Unsafe(String),
    /// A `!vault` string, still encrypted: decrypted when a template uses it (as ansible-core
    /// decrypts lazily), so a value the play never uses needs no vault password.
    Vault(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// A short name of the node's type, for "expected X, found Y" messages.
    pub fn kind(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) | Value::Unsafe(_) | Value::Vault(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) | Value::Unsafe(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.value {
            Value::Seq(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }
    /// Look a key up in a mapping node.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?.iter().rev().find(|(k, _)| k.scalar_string().as_deref() == Some(key)).map(|(_, v)| v)
    }
    /// A scalar as text (numbers and booleans as YAML would print them).
    pub fn scalar_string(&self) -> Option<String> {
        match &self.value {
            Value::Str(s) | Value::Unsafe(s) => Some(s.clone()),
            // Read as a scalar (a key, a setting): decrypted now.
            Value::Vault(c) => crate::vault::decrypt(c).ok().and_then(|p| String::from_utf8(p).ok()),
            Value::Int(i) => Some(i.to_string()),
            Value::Float(f) => Some(f.to_string()),
            Value::Bool(b) => Some(if *b { "True".into() } else { "False".into() }),
            Value::Null => Some(String::new()),
            _ => None,
        }
    }
    /// `!unsafe` on a collection: every string inside is data.
    fn mark_unsafe(&mut self) {
        match &mut self.value {
            Value::Str(s) => self.value = Value::Unsafe(std::mem::take(s)),
            Value::Seq(items) => items.iter_mut().for_each(Node::mark_unsafe),
            Value::Map(entries) => entries.iter_mut().for_each(|(_, v)| v.mark_unsafe()),
            _ => {}
        }
    }
    /// An error located at this node.
    pub fn error(&self, message: impl Into<String>) -> SourceError {
        SourceError::new(self.span.clone(), message)
    }
    /// The node as plain data (what templates and variables see).
    pub fn to_json(&self) -> Json {
        match &self.value {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Int(i) => Json::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f).map(Json::Number).unwrap_or(Json::Null),
            Value::Str(s) => Json::String(s.clone()),
            Value::Unsafe(s) => unsafe_text(s),
            Value::Vault(c) => vault_text(c),
            Value::Seq(items) => Json::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(entries) => {
                let mut map = serde_json::Map::new();
                for (k, v) in entries {
                    map.insert(k.scalar_string().unwrap_or_default(), v.to_json());
                }
                Json::Object(map)
            }
        }
    }
}

/// Reads and parses a YAML file; returns the first document (`Null` when empty).
pub fn load_file(path: &Path) -> SResult<Node> {
    // A vault-encrypted file (ansible-vault encrypt) is decrypted with the run's passwords.
    let bytes = crate::vault::read_file(path).map_err(|e| SourceError::new(Span::file(path), e))?;
    let text = String::from_utf8(bytes).map_err(|_| SourceError::new(Span::file(path), "not UTF-8 text"))?;
    parse_str(&text, path)
}

/// Parses YAML text; `path` only names it in errors. Returns the first document.
/// A key written twice in one mapping is an error.
pub fn parse_str(text: &str, path: &Path) -> SResult<Node> {
    parse(text, path, true).map(|(n, _)| n)
}

/// Every document of a YAML text (`from_yaml_all`), duplicate keys an error.
pub fn parse_all(text: &str, path: &Path) -> SResult<Vec<Node>> {
    parse_docs(text, path, true).map(|(d, _)| d)
}

/// As [`parse_str`], but a duplicate key is a warning (returned), the last one winning,
/// as Ansible reads inventories.
pub fn parse_str_lenient(text: &str, path: &Path) -> SResult<(Node, Vec<String>)> {
    parse(text, path, false)
}

fn parse(text: &str, path: &Path, strict: bool) -> SResult<(Node, Vec<String>)> {
    let file = Arc::new(path.to_path_buf());
    let (docs, warnings) = parse_docs(text, path, strict)?;
    Ok((docs.into_iter().next().unwrap_or(Node { span: Span::new(&file, 1, 1), value: Value::Null }), warnings))
}

fn parse_docs(text: &str, path: &Path, strict: bool) -> SResult<(Vec<Node>, Vec<String>)> {
    // PyYAML does not check the indentation of a quoted scalar's continuation lines ("instead
    // of checking indentation, we check for document separators"); saphyr does. Their leading
    // blanks are folded away, so indenting them changes no value: do it, scalar by scalar.
    let mut text = std::borrow::Cow::Borrowed(text);
    let mut first_err = None;
    for _ in 0..64 {
        match parse_flow_fixed(&text, path, strict) {
            Err(e) if e.message.contains("invalid indentation in quoted scalar") => {
                let fixed = reindent_quoted(&text, e.span.line, e.span.col);
                first_err.get_or_insert(e);
                match fixed {
                    Some(f) => text = std::borrow::Cow::Owned(f),
                    None => break,
                }
            }
            Err(e) => return Err(first_err.unwrap_or(e)),
            ok => return ok,
        }
    }
    Err(first_err.unwrap_or_else(|| SourceError::new(Span::file(path), "YAML syntax error")))
}

/// `text` with the continuation lines of the quoted scalar that opens at `line`:`col` (1-based)
/// indented past its opening quote; `None` when it cannot be found.
fn reindent_quoted(text: &str, line: usize, col: usize) -> Option<String> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let open_line = lines.get(line.checked_sub(1)?)?;
    let q_at = open_line.char_indices().nth(col.checked_sub(1)?).map(|(i, _)| i)?;
    let q = open_line[q_at..].chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let want = open_line[..q_at].chars().count() + 1;
    let mut out: String = lines[..line - 1].concat();
    // Where the scalar ends: the matching quote (`\"` escapes in double quotes, `''` in single).
    let mut rest_first = &open_line[q_at + 1..];
    out.push_str(&open_line[..q_at + 1]);
    let mut i = line - 1;
    loop {
        let (closed_at, seg) = scan_quoted(rest_first, q);
        if let Some(at) = closed_at {
            out.push_str(seg);
            out.push_str(&rest_first[at..]);
            out.push_str(&lines[i + 1..].concat());
            return Some(out);
        }
        out.push_str(rest_first);
        i += 1;
        let next = lines.get(i)?;
        let indent = next.len() - next.trim_start_matches([' ', '\t']).len();
        if !next.trim().is_empty() && next[..indent].chars().count() < want {
            out.push_str(&" ".repeat(want - next[..indent].chars().count()));
        }
        rest_first = next;
    }
}

/// The byte offset just past the closing quote `q` in `s` (and the text up to it), if `s`
/// holds it.
fn scan_quoted(s: &str, q: char) -> (Option<usize>, &str) {
    let mut it = s.char_indices().peekable();
    while let Some((i, c)) = it.next() {
        if q == '"' && c == '\\' {
            it.next();
            continue;
        }
        if c == q {
            if q == '\'' && it.peek().map(|x| x.1) == Some('\'') {
                it.next();
                continue;
            }
            return (Some(i + 1), &s[..i + 1]);
        }
    }
    (None, s)
}

fn parse_flow_fixed(text: &str, path: &Path, strict: bool) -> SResult<(Vec<Node>, Vec<String>)> {
    match parse_once(text, path, strict) {
        // PyYAML (Ansible's loader) accepts a flow collection whose continuation lines, or
        // closing bracket, sit left of where it began; saphyr does not. Indent those lines
        // (the lines stay where they are, so errors keep their line numbers) and try again.
        Err(e) if e.message.contains("indentation") => match reindent_flow(text) {
            Some(fixed) => parse_once(&fixed, path, strict).map_err(|_| e),
            None => Err(e),
        },
        other => other,
    }
}

/// `text` with every line that continues an open flow collection (`{`/`[`) indented past the
/// line the collection began on; `None` when no line needed it.
fn reindent_flow(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len() + 64);
    let mut depth = 0usize;
    let mut start_indent = 0usize;
    let mut changed = false;
    for line in text.split_inclusive('\n') {
        let indent = line.len() - line.trim_start_matches(' ').len();
        if depth > 0 && !line.trim().is_empty() && indent <= start_indent {
            out.push_str(&" ".repeat(start_indent + 1 - indent));
            changed = true;
        }
        if depth == 0 {
            start_indent = indent;
        }
        out.push_str(line);
        let mut quote: Option<char> = None;
        for c in line.chars() {
            match (quote, c) {
                (None, '#') if depth == 0 => break,
                (None, '\'' | '"') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (None, '{' | '[') => depth += 1,
                (None, '}' | ']') => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
    }
    changed.then_some(out)
}

fn parse_once(text: &str, path: &Path, strict: bool) -> SResult<(Vec<Node>, Vec<String>)> {
    let file = Arc::new(path.to_path_buf());
    let mut builder = Builder { stack: Vec::new(), anchors: Default::default(), docs: Vec::new(), nodes: 0, strict, warnings: Vec::new() };
    for item in Parser::new_from_str(text) {
        let (event, span) = item.map_err(|e| {
            let m = e.marker();
            SourceError::new(Span::new(&file, m.line(), m.col() + 1), format!("YAML syntax error: {}", e.info()))
        })?;
        let at = Span::new(&file, span.start.line(), span.start.col() + 1);
        builder.event(event, at)?;
    }
    let warnings = std::mem::take(&mut builder.warnings);
    Ok((builder.docs, warnings))
}

enum Frame {
    Seq { span: Span, anchor: usize, items: Vec<Node>, unsafe_: bool },
    Map { span: Span, anchor: usize, entries: Vec<(Node, Node)>, key: Option<Node>, unsafe_: bool },
}

struct Builder {
    stack: Vec<Frame>,
    anchors: std::collections::HashMap<usize, Node>,
    docs: Vec<Node>,
    nodes: usize,
    strict: bool,
    warnings: Vec<String>,
}

impl Builder {
    fn event(&mut self, event: Event<'_>, at: Span) -> SResult<()> {
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                let tag = tag.map(|t| format!("{}{}", t.handle, t.suffix));
                let value = resolve_scalar(&text, style, tag.as_deref()).map_err(|m| SourceError::new(at.clone(), m))?;
                let node = Node { span: at, value };
                self.count(1, &node.span)?;
                if anchor > 0 {
                    self.anchors.insert(anchor, node.clone());
                }
                self.push(node)?;
            }
            Event::Alias(id) => {
                let node = self.anchors.get(&id).cloned().ok_or_else(|| SourceError::new(at.clone(), "alias to an unknown anchor"))?;
                let size = count_nodes(&node);
                self.count(size, &at)?;
                self.push(Node { span: at, value: node.value })?;
            }
            Event::SequenceStart(anchor, tag) => {
                self.depth(&at)?;
                let unsafe_ = tag.is_some_and(|t| format!("{}{}", t.handle, t.suffix) == "!unsafe");
                self.stack.push(Frame::Seq { span: at, anchor, items: Vec::new(), unsafe_ });
            }
            Event::MappingStart(anchor, tag) => {
                self.depth(&at)?;
                let unsafe_ = tag.is_some_and(|t| format!("{}{}", t.handle, t.suffix) == "!unsafe");
                self.stack.push(Frame::Map { span: at, anchor, entries: Vec::new(), key: None, unsafe_ });
            }
            Event::SequenceEnd => {
                if let Some(Frame::Seq { span, anchor, items, unsafe_ }) = self.stack.pop() {
                    let mut node = Node { span, value: Value::Seq(items) };
                    if unsafe_ {
                        node.mark_unsafe();
                    }
                    self.finish(node, anchor)?;
                }
            }
            Event::MappingEnd => {
                if let Some(Frame::Map { span, anchor, entries, unsafe_, .. }) = self.stack.pop() {
                    self.duplicates(&entries)?;
                    let entries = apply_merge_keys(entries)?;
                    let mut node = Node { span, value: Value::Map(entries) };
                    if unsafe_ {
                        node.mark_unsafe();
                    }
                    self.finish(node, anchor)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn finish(&mut self, node: Node, anchor: usize) -> SResult<()> {
        self.count(1, &node.span)?;
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        self.push(node)
    }

    /// A key written twice in one mapping: an error (strict), else a warning; the last one wins.
    fn duplicates(&mut self, entries: &[(Node, Node)]) -> SResult<()> {
        for (i, (k, _)) in entries.iter().enumerate() {
            let Some(name) = k.scalar_string().filter(|n| n != "<<") else { continue };
            if let Some((first, _)) = entries[..i].iter().find(|(f, _)| f.scalar_string().as_deref() == Some(name.as_str())) {
                let e = SourceError::new(k.span.clone(), format!("duplicate key '{name}' (first at line {}, column {})", first.span.line, first.span.col));
                if self.strict {
                    return Err(e.help("YAML takes the last one silently; recover refuses to guess: remove one of them"));
                }
                self.warnings.push(format!("{}: {} (the last one wins, as in Ansible)", k.span, e.message));
            }
        }
        Ok(())
    }

    fn depth(&self, at: &Span) -> SResult<()> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(SourceError::new(at.clone(), format!("YAML nested deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }

    fn count(&mut self, n: usize, at: &Span) -> SResult<()> {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > MAX_NODES {
            return Err(SourceError::new(at.clone(), format!("YAML document expands to more than {MAX_NODES} nodes (alias bomb?)")));
        }
        Ok(())
    }

    fn push(&mut self, node: Node) -> SResult<()> {
        match self.stack.last_mut() {
            None => self.docs.push(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { entries, key, .. }) => match key.take() {
                None => *key = Some(node),
                Some(k) => entries.push((k, node)),
            },
        }
        Ok(())
    }
}

fn count_nodes(node: &Node) -> usize {
    match &node.value {
        Value::Seq(items) => 1 + items.iter().map(count_nodes).sum::<usize>(),
        Value::Map(entries) => 1 + entries.iter().map(|(k, v)| count_nodes(k) + count_nodes(v)).sum::<usize>(),
        _ => 1,
    }
}

/// `<<: *base` and `<<: [*a, *b]`: keys of the merged mappings that the
/// mapping does not set itself.
fn apply_merge_keys(entries: Vec<(Node, Node)>) -> SResult<Vec<(Node, Node)>> {
    if !entries.iter().any(|(k, _)| k.as_str() == Some("<<")) {
        return Ok(entries);
    }
    let mut own = Vec::new();
    let mut merged: Vec<(Node, Node)> = Vec::new();
    for (k, v) in entries {
        if k.as_str() == Some("<<") {
            let sources = match v.value {
                Value::Map(m) => vec![m],
                Value::Seq(items) => items
                    .into_iter()
                    .map(|n| match n.value {
                        Value::Map(m) => Ok(m),
                        _ => Err(SourceError::new(n.span, "a merge key (<<) takes mappings")),
                    })
                    .collect::<SResult<Vec<_>>>()?,
                _ => return Err(SourceError::new(v.span, "a merge key (<<) takes a mapping or a list of mappings")),
            };
            for m in sources {
                for (mk, mv) in m {
                    if !merged.iter().any(|(x, _)| x.scalar_string() == mk.scalar_string()) {
                        merged.push((mk, mv));
                    }
                }
            }
        } else {
            own.push((k, v));
        }
    }
    merged.retain(|(mk, _)| !own.iter().any(|(k, _)| k.scalar_string() == mk.scalar_string()));
    merged.extend(own);
    Ok(merged)
}

/// YAML 1.1 scalar resolution, as PyYAML (and so Ansible) does it.
fn resolve_scalar(text: &str, style: ScalarStyle, tag: Option<&str>) -> Result<Value, String> {
    match tag {
        Some("tag:yaml.org,2002:str") | Some("!!str") => return Ok(Value::Str(text.to_string())),
        Some("!unsafe") => return Ok(Value::Unsafe(text.to_string())),
        Some("!vault") => {
            if !text.trim_start().starts_with("$ANSIBLE_VAULT;") {
                return Err("`!vault` value: not an ansible-vault ciphertext (it must start with $ANSIBLE_VAULT;)".into());
            }
            return Ok(Value::Vault(text.to_string()));
        }
        _ => {}
    }
    if style != ScalarStyle::Plain {
        return Ok(Value::Str(text.to_string()));
    }
    Ok(match text {
        "" | "~" | "null" | "Null" | "NULL" => Value::Null,
        "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => Value::Bool(true),
        "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => Value::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" => Value::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => Value::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => Value::Float(f64::NAN),
        _ => parse_number(text).unwrap_or_else(|| Value::Str(text.to_string())),
    })
}

fn parse_number(text: &str) -> Option<Value> {
    let t = text.replace('_', "");
    let (neg, digits) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(&t)),
    };
    if digits.is_empty() {
        return None;
    }
    let sign = |v: i64| if neg { -v } else { v };
    if let Some(hex) = digits.strip_prefix("0x") {
        return i64::from_str_radix(hex, 16).ok().map(|v| Value::Int(sign(v)));
    }
    if let Some(oct) = digits.strip_prefix("0o") {
        return i64::from_str_radix(oct, 8).ok().map(|v| Value::Int(sign(v)));
    }
    if digits.len() > 1 && digits.starts_with('0') && digits.bytes().all(|b| b.is_ascii_digit()) {
        // YAML 1.1 octal: 0644
        return i64::from_str_radix(&digits[1..], 8).ok().map(|v| Value::Int(sign(v)));
    }
    if digits.bytes().all(|b| b.is_ascii_digit()) {
        return digits.parse::<i64>().ok().map(|v| Value::Int(sign(v)));
    }
    let first = digits.as_bytes()[0];
    if (first.is_ascii_digit() || first == b'.')
        && digits.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'))
        && digits.bytes().any(|b| b.is_ascii_digit())
    {
        return t.parse::<f64>().ok().map(Value::Float);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> SResult<Node> {
        parse_str(s, Path::new("t.yml"))
    }

    #[test]
    fn quoted_scalars_continue_at_any_indentation_as_in_pyyaml() {
        let n = parse("t:\n  - a: \"{{\n    1 + 2\n  }}\"\n    b: 'x\n  y'\n    c: \"q\\\"\n  r\"\n").unwrap().to_json();
        assert_eq!(n["t"][0]["a"], "{{ 1 + 2 }}");
        assert_eq!(n["t"][0]["b"], "x y");
        assert_eq!(n["t"][0]["c"], "q\" r");
    }

    #[test]
    fn scalars_resolve_like_pyyaml() {
        let n = parse("a: yes\nb: 'yes'\nc: 0644\nd: 1.5\ne: ~\nf: 12\ng: text").unwrap();
        let j = n.to_json();
        assert_eq!(j["a"], Json::Bool(true));
        assert_eq!(j["b"], Json::String("yes".into()));
        assert_eq!(j["c"], Json::from(420));
        assert_eq!(j["d"], Json::from(1.5));
        assert_eq!(j["e"], Json::Null);
        assert_eq!(j["f"], Json::from(12));
        assert_eq!(j["g"], Json::String("text".into()));
    }

    #[test]
    fn spans_point_at_values() {
        let n = parse("top:\n  key: value\n").unwrap();
        let v = n.get("top").unwrap().get("key").unwrap();
        assert_eq!((v.span.line, v.span.col), (2, 8));
    }

    #[test]
    fn syntax_error_has_line_and_column() {
        let e = parse("a: [1, 2\nb: c").unwrap_err();
        assert!(e.span.line >= 1, "{e}");
        assert!(e.to_string().starts_with("t.yml:"), "{e}");
    }

    #[test]
    fn merge_keys() {
        let n = parse("base: &b {x: 1, y: 2}\nchild:\n  <<: *b\n  y: 3\n").unwrap();
        let j = n.to_json();
        assert_eq!(j["child"]["x"], Json::from(1));
        assert_eq!(j["child"]["y"], Json::from(3));
    }

    #[test]
    fn billion_laughs_is_refused() {
        let mut doc = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let prev = format!("*a{}", i - 1);
            doc.push_str(&format!("a{i}: &a{i} [{}]\n", vec![prev; 10].join(", ")));
        }
        let e = parse(&doc).unwrap_err();
        assert!(e.message.contains("alias bomb"), "{e}");
    }

    #[test]
    fn deep_nesting_is_refused() {
        let doc = "[".repeat(1000) + &"]".repeat(1000);
        let e = parse(&doc).unwrap_err();
        assert!(e.message.contains("deeper") || e.message.contains("recursion limit"), "{e}");
    }
}

/// The key Ansible marks a string with that is data, never a template (`!unsafe`, values an
/// inventory plugin read from outside): `{"__ansible_unsafe": "text"}`, as ansible-inventory
/// prints it.
pub const UNSAFE_KEY: &str = "__ansible_unsafe";

/// `text`, marked as data that is never rendered.
pub fn unsafe_text(text: impl Into<String>) -> Json {
    let mut m = serde_json::Map::new();
    m.insert(UNSAFE_KEY.into(), Json::String(text.into()));
    Json::Object(m)
}

/// The text of a value marked with [`unsafe_text`].
pub fn as_unsafe(v: &Json) -> Option<&str> {
    match v {
        Json::Object(m) if m.len() == 1 => m.get(UNSAFE_KEY)?.as_str(),
        _ => None,
    }
}

/// The key of a `!vault` value kept encrypted: `{"__ansible_vault": "$ANSIBLE_VAULT;..."}`, as
/// ansible-inventory prints it.
pub const VAULT_KEY: &str = "__ansible_vault";

/// A `!vault` ciphertext, kept encrypted until a template uses it.
pub fn vault_text(ciphertext: impl Into<String>) -> Json {
    let mut m = serde_json::Map::new();
    m.insert(VAULT_KEY.into(), Json::String(ciphertext.into()));
    Json::Object(m)
}

/// The ciphertext of a value made by [`vault_text`].
pub fn as_vault(v: &Json) -> Option<&str> {
    match v {
        Json::Object(m) if m.len() == 1 => m.get(VAULT_KEY)?.as_str(),
        _ => None,
    }
}
