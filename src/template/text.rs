//! Text filters with Python's rules: `comment` (ansible-core's comment styles) and `splitlines`.

use minijinja::value::{Kwargs, Value};
use minijinja::{Error, ErrorKind};

pub(super) fn err(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.into())
}

/// Ansible's `comment` filter: every style (plain, erlang, c, cblock, xml) and every argument
/// (decoration, beginning, prefix, prefix_count, postfix, postfix_count, end, newline), composed
/// exactly as ansible-core's `plugins/filter/core.py` composes it.
pub(super) fn comment(text: Value, style: Option<String>, kw: Kwargs) -> Result<String, Error> {
    let text = crate::template::pyrepr::py_str(&text);
    let style = style.unwrap_or_else(|| "plain".into());
    let (beginning, decoration, end) = match style.as_str() {
        "plain" => ("", "# ", ""),
        "erlang" => ("", "% ", ""),
        "c" => ("", "// ", ""),
        "cblock" => ("/*", " * ", " */"),
        "xml" => ("<!--", " - ", "-->"),
        other => return Err(err(format!("comment: invalid style '{other}' (styles: plain, erlang, c, cblock, xml)"))),
    };
    let arg = |k: &str| -> Result<Option<String>, Error> { Ok(kw.get::<Option<Value>>(k)?.map(|v| crate::template::pyrepr::py_str(&v))) };
    let count = |k: &str| -> Result<usize, Error> {
        Ok(match kw.get::<Option<Value>>(k)? {
            None => 1,
            Some(v) => crate::template::pyrepr::py_str(&v).trim().parse::<i64>().map_err(|_| err(format!("comment: {k} must be a whole number")))?.max(0) as usize,
        })
    };
    let prepostfix = arg("decoration")?.unwrap_or_else(|| decoration.to_string());
    let newline = arg("newline")?.unwrap_or_else(|| "\n".into());
    let beginning = arg("beginning")?.unwrap_or_else(|| beginning.to_string());
    let prefix = arg("prefix")?.unwrap_or_else(|| prepostfix.trim_end().to_string());
    let postfix = arg("postfix")?.unwrap_or_else(|| prepostfix.trim_end().to_string());
    let decoration = arg("decoration")?.unwrap_or_else(|| decoration.to_string());
    let end = arg("end")?.unwrap_or_else(|| end.to_string());
    let (prefix_count, postfix_count) = (count("prefix_count")?, count("postfix_count")?);
    kw.assert_all_used()?;
    let mut out = String::new();
    if !beginning.is_empty() {
        out.push_str(&format!("{beginning}{newline}"));
    }
    if !prefix.is_empty() {
        let one = if prefix != newline { format!("{prefix}{newline}") } else { newline.clone() };
        out.push_str(&one.repeat(prefix_count));
    }
    let body = if newline.is_empty() { format!("{decoration}{text}") } else { format!("{decoration}{}", text.replace(&newline, &format!("{newline}{decoration}"))) };
    let pattern = format!("{decoration}{newline}");
    let body = if pattern.is_empty() { body } else { body.replace(&pattern, &format!("{}{newline}", decoration.trim_end())) };
    out.push_str(&body);
    for _ in 0..postfix_count {
        out.push_str(&newline);
        out.push_str(&postfix);
    }
    if !end.is_empty() {
        out.push_str(&format!("{newline}{end}"));
    }
    Ok(out)
}

/// Python's `str.splitlines()` (without keepends).
pub fn py_splitlines(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push(std::mem::take(&mut cur));
            }
            '\n' | '\u{0b}' | '\u{0c}' | '\u{1c}' | '\u{1d}' | '\u{1e}' | '\u{85}' | '\u{2028}' | '\u{2029}' => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}
