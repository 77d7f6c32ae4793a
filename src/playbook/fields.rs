//! Small readers of YAML fields for the loaders, each with an error naming file:line:col.


use serde_json::Value as Json;

use super::{Cond};
use crate::error::{SResult, SourceError};
use crate::template::Vars;
use crate::yaml::{Node, Value};

pub(super) fn unknown_key(k: &Node, key: &str, known: &[&str], what: &str) -> SourceError {
    let e = k.error(format!("unknown {what} key or module '{key}'"));
    match closest(key, known) {
        Some(c) => e.help(format!("did you mean '{c}'?")),
        None => e,
    }
}

/// The known name closest to `word` by edit distance, if close enough to be a typo.
pub(crate) fn closest<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    known.iter().map(|k| (edit_distance(word, k), *k)).filter(|(d, k)| *d <= 2.max(k.len() / 4)).min().map(|(_, k)| k)
}

pub(super) fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push((prev[j] + usize::from(ca != cb)).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

pub(super) fn opt_string(node: &Node, key: &str) -> SResult<Option<String>> {
    match node.get(key) {
        None => Ok(None),
        Some(v) => match &v.value {
            Value::Null => Ok(None),
            Value::Seq(_) | Value::Map(_) => Err(v.error(format!("`{key}` must be text, found {}", v.kind()))),
            _ => Ok(v.scalar_string()),
        },
    }
}

pub(super) fn opt_bool(node: &Node, key: &str) -> SResult<Option<bool>> {
    match node.get(key) {
        None => Ok(None),
        Some(v) => match &v.value {
            Value::Bool(b) => Ok(Some(*b)),
            Value::Str(s) if matches!(s.to_lowercase().as_str(), "true" | "yes" | "false" | "no") => Ok(Some(matches!(s.to_lowercase().as_str(), "true" | "yes"))),
            _ => Err(v.error(format!("`{key}` must be true or false, found {}", v.kind()))),
        },
    }
}

pub(super) fn opt_u64(node: &Node, key: &str) -> SResult<Option<u64>> {
    match node.get(key) {
        None => Ok(None),
        Some(v) => match &v.value {
            Value::Int(n) if *n >= 0 => Ok(Some(*n as u64)),
            _ => Err(v.error(format!("`{key}` must be a whole number of seconds, found {}", v.kind()))),
        },
    }
}

pub(super) fn mapping(node: Option<&Node>, what: &str) -> SResult<Vars> {
    match node {
        None => Ok(Vars::new()),
        Some(n) => match n.to_json() {
            Json::Object(m) => Ok(m.into_iter().collect()),
            Json::Null => Ok(Vars::new()),
            _ => Err(n.error(format!("`{what}` must be a mapping of names to values, found {}", n.kind()))),
        },
    }
}

pub(super) fn strings(node: Option<&Node>) -> SResult<Vec<String>> {
    match node {
        None => Ok(Vec::new()),
        Some(n) => match &n.value {
            Value::Null => Ok(Vec::new()),
            Value::Seq(items) => items.iter().map(|i| i.scalar_string().ok_or_else(|| i.error("expected text"))).collect(),
            _ => Ok(vec![n.scalar_string().ok_or_else(|| n.error("expected text or a list of text"))?]),
        },
    }
}

pub(super) fn conds(node: Option<&Node>) -> SResult<Vec<Cond>> {
    let Some(node) = node else { return Ok(Vec::new()) };
    let one = |n: &Node| -> SResult<Cond> {
        match &n.value {
            Value::Bool(b) => Ok(Cond { expr: if *b { "true".into() } else { "false".into() }, span: n.span.clone() }),
            _ => Ok(Cond { expr: n.scalar_string().ok_or_else(|| n.error("a condition must be an expression"))?, span: n.span.clone() }),
        }
    };
    match &node.value {
        Value::Seq(items) => items.iter().map(one).collect(),
        _ => Ok(vec![one(node)?]),
    }
}
