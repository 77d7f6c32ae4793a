//! What PyYAML reads and a strict YAML 1.2 parser does not: quoted scalars and flow collections
//! indented less than their key, re-indented before parsing.

use std::path::Path;

use super::*;
use crate::error::SResult;

/// `text` with the continuation lines of the quoted scalar that opens at `line`:`col` (1-based)
/// indented past its opening quote; `None` when it cannot be found.
pub(super) fn reindent_quoted(text: &str, line: usize, col: usize) -> Option<String> {
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
pub(super) fn scan_quoted(s: &str, q: char) -> (Option<usize>, &str) {
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

pub(super) fn parse_flow_fixed(text: &str, path: &Path, strict: bool) -> SResult<(Vec<Node>, Vec<String>)> {
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
pub(super) fn reindent_flow(text: &str) -> Option<String> {
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
