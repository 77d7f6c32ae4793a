//! Building nodes from the parser's events: positions, anchors and aliases, merge keys, and
//! scalars typed as YAML 1.1 (Ansible's) types them.

use saphyr_parser::{Event, ScalarStyle};

use super::*;
use crate::error::{SResult, SourceError, Span};

pub(super) enum Frame {
    Seq { span: Span, anchor: usize, items: Vec<Node>, unsafe_: bool },
    Map { span: Span, anchor: usize, entries: Vec<(Node, Node)>, key: Option<Node>, unsafe_: bool },
}

pub(super) struct Builder {
    pub(super) stack: Vec<Frame>,
    pub(super) anchors: std::collections::HashMap<usize, Node>,
    pub(super) docs: Vec<Node>,
    pub(super) nodes: usize,
    pub(super) strict: bool,
    pub(super) warnings: Vec<String>,
}

impl Builder {
    pub(super) fn event(&mut self, event: Event<'_>, at: Span) -> SResult<()> {
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

    pub(super) fn finish(&mut self, node: Node, anchor: usize) -> SResult<()> {
        self.count(1, &node.span)?;
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        self.push(node)
    }

    /// A key written twice in one mapping: an error (strict), else a warning; the last one wins.
    pub(super) fn duplicates(&mut self, entries: &[(Node, Node)]) -> SResult<()> {
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

    pub(super) fn depth(&self, at: &Span) -> SResult<()> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(SourceError::new(at.clone(), format!("YAML nested deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }

    pub(super) fn count(&mut self, n: usize, at: &Span) -> SResult<()> {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > MAX_NODES {
            return Err(SourceError::new(at.clone(), format!("YAML document expands to more than {MAX_NODES} nodes (alias bomb?)")));
        }
        Ok(())
    }

    pub(super) fn push(&mut self, node: Node) -> SResult<()> {
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

pub(super) fn count_nodes(node: &Node) -> usize {
    match &node.value {
        Value::Seq(items) => 1 + items.iter().map(count_nodes).sum::<usize>(),
        Value::Map(entries) => 1 + entries.iter().map(|(k, v)| count_nodes(k) + count_nodes(v)).sum::<usize>(),
        _ => 1,
    }
}

/// `<<: *base` and `<<: [*a, *b]`: keys of the merged mappings that the
/// mapping does not set itself.
pub(super) fn apply_merge_keys(entries: Vec<(Node, Node)>) -> SResult<Vec<(Node, Node)>> {
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
pub(super) fn resolve_scalar(text: &str, style: ScalarStyle, tag: Option<&str>) -> Result<Value, String> {
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

pub(super) fn parse_number(text: &str) -> Option<Value> {
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
