//! `key=value` text as ansible-core's parse_kv and split_args read it: a task's free-form
//! arguments, `command`'s own `chdir=`/`creates=` words, escapes, and `-e k=v`.

use serde_json::Value as Json;

/// `command: echo hi` keeps the string whole; `file: path=/x state=directory` is k=v, split as
/// Ansible's `parse_kv` splits: on spaces outside quotes and outside `{{ }}`, `{% %}`, `{# #}`.
/// Words that are not `k=v` are the free-form part (`_raw_params`).
pub(super) fn free_form(module: &str, s: &str, args: &mut serde_json::Map<String, Json>) {
    if matches!(module, "command" | "shell" | "script" | "raw") {
        let (raw, params) = command_params(s);
        for (k, v) in params {
            args.insert(k, Json::String(v));
        }
        args.insert("_raw_params".into(), Json::String(raw));
        return;
    }
    let mut raw = Vec::new();
    let Ok(words) = split_kv(s) else {
        args.insert("_raw_params".into(), Json::String(s.to_string()));
        return;
    };
    for w in words {
        // ansible-core's parse_kv decodes Python's escapes in each word (`regexp='\b'` is a
        // backspace; `'\\b'` a word boundary) before it splits it at `=`.
        match kv_word(&decode_escapes(&w)) {
            Some((k, v)) => {
                args.insert(k, Json::String(v));
            }
            None => raw.push(w),
        }
    }
    if !raw.is_empty() {
        args.insert("_raw_params".into(), Json::String(raw.join(" ")));
    }
}

/// ansible-core's `_decode_escapes`: `\\`, `\'`, `\"`, `\a` `\b` `\f` `\n` `\r` `\t` `\v`,
/// `\xHH`, `\uHHHH`, `\UHHHHHHHH` become the characters they name; anything else stays.
pub(super) fn decode_escapes(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_string();
    }
    let c: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < c.len() {
        if c[i] == '\\' && i + 1 < c.len() {
            let simple = match c[i + 1] {
                '\\' => Some('\\'),
                '\'' => Some('\''),
                '"' => Some('"'),
                'a' => Some('\u{7}'),
                'b' => Some('\u{8}'),
                'f' => Some('\u{c}'),
                'n' => Some('\n'),
                'r' => Some('\r'),
                't' => Some('\t'),
                'v' => Some('\u{b}'),
                _ => None,
            };
            if let Some(ch) = simple {
                out.push(ch);
                i += 2;
                continue;
            }
            let width = match c[i + 1] {
                'x' => 2,
                'u' => 4,
                'U' => 8,
                _ => 0,
            };
            if width > 0 && i + 2 + width <= c.len() {
                let hex: String = c[i + 2..i + 2 + width].iter().collect();
                if let Some(ch) = u32::from_str_radix(&hex, 16).ok().filter(|_| hex.chars().all(|h| h.is_ascii_hexdigit())).and_then(char::from_u32) {
                    out.push(ch);
                    i += 2 + width;
                    continue;
                }
            }
        }
        out.push(c[i]);
        i += 1;
    }
    out
}

/// The options ansible-core's `parse_kv(check_raw=True)` takes out of a command line
/// (`shell: make chdir=/src creates=/src/out`); every other word, `x=1` included, stays the
/// command's. The command keeps its own text (quotes, newlines) but for the words taken out.
pub(super) fn command_params(s: &str) -> (String, Vec<(String, String)>) {
    const KEYS: &[&str] = &["creates", "removes", "chdir", "executable", "warn", "stdin", "stdin_add_newline", "strip_empty_ends"];
    // Words as ansible-core's split_args sees them: whitespace outside quotes and outside
    // `{{ }}`, `{% %}`, `{# #}` separates.
    let b: Vec<(usize, char)> = s.char_indices().collect();
    let mut words: Vec<(usize, usize)> = Vec::new();
    let (mut quote, mut depth, mut start, mut i) = (None::<char>, 0usize, None::<usize>, 0);
    while i < b.len() {
        let (at, c) = b[i];
        let next = b.get(i + 1).map(|x| x.1);
        if c.is_whitespace() && quote.is_none() && depth == 0 {
            if let Some(st) = start.take() {
                words.push((st, at));
            }
            i += 1;
            continue;
        }
        start.get_or_insert(at);
        match (c, quote) {
            ('\\', Some(_)) => i += 1,
            ('{', None) if matches!(next, Some('{') | Some('%') | Some('#')) => {
                depth += 1;
                i += 1;
            }
            ('}' | '%' | '#', None) if depth > 0 && next == Some('}') => {
                depth -= 1;
                i += 1;
            }
            ('\'' | '"', None) if depth == 0 => quote = Some(c),
            (q, Some(open)) if q == open => quote = None,
            _ => {}
        }
        i += 1;
    }
    if let Some(st) = start {
        words.push((st, s.len()));
    }
    let mut params = Vec::new();
    let mut out = String::new();
    let mut last = 0;
    for (st, end) in words {
        let w = &s[st..end];
        let Some((k, v)) = w.split_once('=') else { continue };
        if !KEYS.contains(&k) {
            continue;
        }
        let v = v.trim();
        let v = match (v.chars().next(), v.chars().last()) {
            (Some(q @ ('\'' | '"')), Some(l)) if v.len() >= 2 && q == l => &v[1..v.len() - 1],
            _ => v,
        };
        params.push((k.to_string(), v.to_string()));
        // The word goes, with the blanks before it (those after it if it is the first).
        out.push_str(s[last..st].trim_end_matches([' ', '\t']));
        last = end;
    }
    out.push_str(&s[last..]);
    if params.is_empty() {
        return (s.to_string(), params);
    }
    (out.trim_start_matches([' ', '\t']).to_string(), params)
}

#[cfg(test)]
pub(crate) fn command_params_for_test(s: &str) -> (String, Vec<(String, String)>) {
    command_params(s)
}

/// `key=value`, if `w` is one (a word of [`split_kv`], quotes already taken off).
/// A `k=v` word as ansible-core's parse_kv reads it: split at the first `=` after the first
/// character that is not escaped (`\=`); the key may be anything, a template included
/// (`"{{ 'x' + item }}={{ item }}"` sets a fact named by the item).
pub(super) fn kv_word(w: &str) -> Option<(String, String)> {
    let b = w.as_bytes();
    let pos = (1..b.len()).find(|&i| b[i] == b'=' && b[i - 1] != b'\\')?;
    let k = w[..pos].trim();
    if k.is_empty() || k.contains(char::is_whitespace) && !crate::template::is_template(k) {
        return None;
    }
    Some((k.to_string(), w[pos + 1..].to_string()))
}

/// Splits `k=v k2='a b' k3={{ x | default('y z') }}` into words, as Ansible's
/// parse_kv does: whitespace separates, except inside quotes and `{{ }}` / `{% %}`.
pub fn split_kv(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut depth = 0usize;
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if quote.is_none() && c == '{' && matches!(next, Some('{') | Some('%')) {
            depth += 1;
            cur.push(c);
            cur.push(next.unwrap_or('{'));
            i += 2;
            continue;
        }
        if quote.is_none() && depth > 0 && matches!(c, '}' | '%') && next == Some('}') {
            depth -= 1;
            cur.push(c);
            cur.push('}');
            i += 2;
            continue;
        }
        match (c, quote) {
            ('\'', None) | ('"', None) if depth == 0 => quote = Some(c),
            (q, Some(open)) if q == open && depth == 0 => quote = None,
            (w, None) if w.is_whitespace() && depth == 0 => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
            }
            _ => cur.push(c),
        }
        i += 1;
    }
    if quote.is_some() {
        return Err("unclosed quote".into());
    }
    if depth > 0 {
        return Err("unclosed {{ or {%".into());
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    Ok(words)
}

pub fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_') && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
