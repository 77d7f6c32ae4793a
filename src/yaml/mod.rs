//! YAML with a source position on every node.
//!
//! Built from saphyr-parser's events rather than a serde mapping so that every
//! value keeps its `file:line:col` for error messages, scalars are resolved the
//! way Ansible (PyYAML, YAML 1.1) resolves them (`yes`/`no`/`on`/`off` are
//! booleans), merge keys (`<<`) work, and hostile documents are refused:
//! alias expansion and nesting depth are bounded (a "billion laughs" file is an
//! error, not an out-of-memory).

mod builder;
mod lenient;

use std::path::Path;
use std::sync::Arc;

use builder::*;
use lenient::*;
use saphyr_parser::Parser;
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

#[cfg(test)]
mod tests;

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
