//! Text from a host, a file or a user, made safe for a terminal, a page or a log line
//! (DESIGN invariant 13): control characters are shown escaped, never sent as they are, so a
//! file's old content cannot move the cursor over a preview, nor a name rewrite the line it
//! is on.

use std::borrow::Cow;

/// Does `c` need escaping? C0 controls, DEL, C1 controls, and the Unicode controls that
/// reorder or hide text (bidi overrides, isolates, marks).
fn is_control(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' | '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn escape<'a>(s: &'a str, keep: &[char]) -> Cow<'a, str> {
    if !s.chars().any(|c| is_control(c) && !keep.contains(&c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if !is_control(c) || keep.contains(&c) {
            out.push(c);
            continue;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x100 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push_str(&format!("\\u{{{:04x}}}", c as u32)),
        }
    }
    Cow::Owned(out)
}

/// Multi-line text (output, a diff, a message): every control character escaped but
/// newline and tab.
pub fn clean(s: &str) -> Cow<'_, str> {
    escape(s, &['\n', '\t'])
}

/// One line (a name, a host, a path): every control character escaped, newlines too.
pub fn clean_line(s: &str) -> Cow<'_, str> {
    escape(s, &[])
}

/// Event fields that are one line when shown (the rest may hold newlines).
const LINE_KEYS: &[&str] = &["host", "task", "play", "item", "approver", "operator", "playbook", "tier", "decision", "how", "file", "previous", "pattern", "archive"];

/// The same JSON with every string cleaned: [`clean_line`] under a one-line key, else [`clean`].
pub fn clean_json(v: &mut serde_json::Value, line: bool) {
    match v {
        serde_json::Value::String(s) => {
            let c = if line { clean_line(s) } else { clean(s) };
            if let Cow::Owned(o) = c {
                *s = o;
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(|x| clean_json(x, line)),
        serde_json::Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                clean_json(x, line || LINE_KEYS.contains(&k.as_str()));
            }
        }
        _ => {}
    }
}

/// An event with every string cleaned for a terminal.
pub fn clean_event(e: &super::Event) -> super::Event {
    let Ok(mut v) = serde_json::to_value(e) else { return e.clone() };
    clean_json(&mut v, false);
    serde_json::from_value(v).unwrap_or_else(|_| e.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_moves_the_cursor_and_keeps_text() {
        assert_eq!(clean("ok\nline\ttab"), "ok\nline\ttab");
        assert_eq!(clean("a\x1b[8Ab\x1b[J"), "a\\x1b[8Ab\\x1b[J");
        assert_eq!(clean_line("mallory\r\x1b[2Kcommander"), "mallory\\r\\x1b[2Kcommander");
        assert_eq!(clean_line("two\nlines"), "two\\nlines");
        assert_eq!(clean_line("abc\u{202e}gpj.exe"), "abc\\u{202e}gpj.exe");
        assert_eq!(clean("\u{9b}2J"), "\\x9b2J");
        assert!(matches!(clean("plain é ü 中"), Cow::Borrowed(_)));
    }
}
