//! Python regular expressions (`re`, as Ansible's modules use them): the syntax the `regex`
//! crate shares with Python is taken as it is, Python's spellings that differ are translated
//! (`\Z`, a `{` that starts no quantifier), and a pattern with what only a backtracking engine
//! does (look-around, backreferences in the pattern) runs on `fancy-regex`, as Python's `re`
//! would run it.

use std::borrow::Cow;

/// A compiled Python pattern: the `regex` crate's automaton, or `fancy-regex` where the
/// pattern needs backtracking. Searched over bytes (a file's lines); the backtracking engine
/// reads them as UTF-8 (as Python's text mode does).
#[derive(Clone, Debug)]
pub enum Regex {
    Std(regex::bytes::Regex),
    Fancy(fancy_regex::Regex),
}

/// Where a group matched.
#[derive(Clone, Copy, Debug)]
pub struct Match {
    start: usize,
    end: usize,
}

impl Match {
    pub fn start(&self) -> usize {
        self.start
    }
    pub fn end(&self) -> usize {
        self.end
    }
}

/// The groups of one match (by number and by name) over the text searched.
#[derive(Clone, Debug)]
pub struct Captures<'t> {
    text: &'t [u8],
    groups: Vec<Option<Match>>,
    names: Vec<Option<String>>,
}

impl Captures<'_> {
    pub fn get(&self, i: usize) -> Option<Match> {
        self.groups.get(i).copied().flatten()
    }
    pub fn name(&self, n: &str) -> Option<Match> {
        let i = self.names.iter().position(|x| x.as_deref() == Some(n))?;
        self.get(i)
    }
    /// Python's `match.groups()` (every group after the whole match, `None` for one that did
    /// not take part) and `match.groupdict()` (the named ones), as text.
    pub fn groups(&self) -> (Vec<Option<String>>, Vec<(String, Option<String>)>) {
        let text = |m: Option<Match>| m.map(|m| String::from_utf8_lossy(&self.text[m.start..m.end]).into_owned());
        let groups = (1..self.groups.len()).map(|i| text(self.get(i))).collect();
        let named = self.names.iter().enumerate().filter_map(|(i, n)| n.clone().map(|n| (n, text(self.get(i))))).collect();
        (groups, named)
    }
    fn group_bytes(&self, key: &str) -> &[u8] {
        let m = match key.parse::<usize>() {
            Ok(i) => self.get(i),
            Err(_) => self.name(key),
        };
        m.map(|m| &self.text[m.start..m.end]).unwrap_or(b"")
    }
    /// A replacement in Rust's syntax (what [`py_replacement`] gives: `${1}`, `${name}`, `$$`).
    fn expand_rust(&self, rep: &[u8], dst: &mut Vec<u8>) {
        let mut i = 0;
        while i < rep.len() {
            if rep[i] == b'$' {
                if rep.get(i + 1) == Some(&b'$') {
                    dst.push(b'$');
                    i += 2;
                    continue;
                }
                if rep.get(i + 1) == Some(&b'{') {
                    if let Some(close) = rep[i + 2..].iter().position(|b| *b == b'}') {
                        let key = String::from_utf8_lossy(&rep[i + 2..i + 2 + close]).into_owned();
                        dst.extend_from_slice(self.group_bytes(&key));
                        i += close + 3;
                        continue;
                    }
                }
                let digits = rep[i + 1..].iter().take_while(|b| b.is_ascii_alphanumeric() || **b == b'_').count();
                if digits > 0 {
                    let key = String::from_utf8_lossy(&rep[i + 1..i + 1 + digits]).into_owned();
                    dst.extend_from_slice(self.group_bytes(&key));
                    i += digits + 1;
                    continue;
                }
            }
            dst.push(rep[i]);
            i += 1;
        }
    }
}

impl Regex {
    pub fn is_match(&self, text: &[u8]) -> bool {
        match self {
            Regex::Std(r) => r.is_match(text),
            // As in captures_iter: only text that is UTF-8 is searched.
            Regex::Fancy(r) => std::str::from_utf8(text).is_ok_and(|s| r.is_match(s).unwrap_or(false)),
        }
    }

    fn names(&self) -> Vec<Option<String>> {
        match self {
            Regex::Std(r) => r.capture_names().map(|n| n.map(str::to_string)).collect(),
            Regex::Fancy(r) => r.capture_names().map(|n| n.map(str::to_string)).collect(),
        }
    }

    /// Every match's groups, left to right, not overlapping.
    pub fn captures_iter<'t>(&self, text: &'t [u8]) -> Vec<Captures<'t>> {
        let names = self.names();
        match self {
            Regex::Std(r) => r.captures_iter(text).map(|c| Captures { text, groups: (0..c.len()).map(|i| c.get(i).map(|m| Match { start: m.start(), end: m.end() })).collect(), names: names.clone() }).collect(),
            Regex::Fancy(r) => {
                // Offsets are the text's own when it is UTF-8; other bytes are not searched.
                let Ok(s) = std::str::from_utf8(text) else { return Vec::new() };
                r.captures_iter(s).flatten().map(|c| Captures { text, groups: (0..c.len()).map(|i| c.get(i).map(|m| Match { start: m.start(), end: m.end() })).collect(), names: names.clone() }).collect()
            }
        }
    }

    pub fn captures<'t>(&self, text: &'t [u8]) -> Option<Captures<'t>> {
        match self {
            Regex::Std(r) => {
                let c = r.captures(text)?;
                Some(Captures { text, groups: (0..c.len()).map(|i| c.get(i).map(|m| Match { start: m.start(), end: m.end() })).collect(), names: self.names() })
            }
            Regex::Fancy(_) => self.captures_iter(text).into_iter().next(),
        }
    }

    /// The first match, where it is.
    pub fn find(&self, text: &[u8]) -> Option<Match> {
        match self {
            Regex::Std(r) => r.find(text).map(|m| Match { start: m.start(), end: m.end() }),
            Regex::Fancy(_) => self.captures(text).and_then(|c| c.get(0)),
        }
    }

    /// How many matches the text holds (not overlapping).
    pub fn count(&self, text: &[u8]) -> usize {
        match self {
            Regex::Std(r) => r.find_iter(text).count(),
            Regex::Fancy(_) => self.captures_iter(text).len(),
        }
    }

    /// Every match replaced by `rep`, written in Rust's syntax ([`py_replacement`]'s).
    pub fn replace_all<'t>(&self, text: &'t [u8], rep: &[u8]) -> Cow<'t, [u8]> {
        match self {
            Regex::Std(r) => r.replace_all(text, rep),
            Regex::Fancy(_) => {
                let all = self.captures_iter(text);
                if all.is_empty() {
                    return Cow::Borrowed(text);
                }
                let mut out = Vec::with_capacity(text.len());
                let mut last = 0;
                for c in &all {
                    let Some(m) = c.get(0) else { continue };
                    out.extend_from_slice(&text[last..m.start]);
                    c.expand_rust(rep, &mut out);
                    last = m.end;
                }
                out.extend_from_slice(&text[last..]);
                Cow::Owned(out)
            }
        }
    }
}

/// A Python pattern compiled for bytes (a file's lines).
/// Whether a pattern sets Python's MULTILINE flag (`(?m)`, `(?im)` ... at its start).
pub fn has_multiline_flag(pat: &str) -> bool {
    let mut rest = pat;
    while let Some(r) = rest.strip_prefix("(?") {
        let end = r.find([')', ':']).unwrap_or(0);
        let flags = &r[..end];
        if end == 0 || !flags.chars().all(|c| "aiLmsux".contains(c)) || r[end..].starts_with(':') {
            return false;
        }
        if flags.contains('m') {
            return true;
        }
        rest = &r[end + 1..];
    }
    false
}

pub fn compile(pat: &str) -> Result<Regex, String> {
    compile_flags(pat, "")
}

/// [`compile`] with Python's flags as inline ones (`"m"`: `re.MULTILINE`, `"s"`: `re.DOTALL`).
pub fn compile_flags(pat: &str, flags: &str) -> Result<Regex, String> {
    let mut out = String::with_capacity(pat.len());
    // Look-around or a backreference: only a backtracking engine runs it.
    let mut backtrack = false;
    let mut chars = pat.chars().peekable();
    let mut in_class = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('Z') if !in_class => out.push_str("\\z"),
                Some(d) if d.is_ascii_digit() && d != '0' && !in_class => {
                    backtrack = true;
                    out.push('\\');
                    out.push(d);
                }
                Some(n) => {
                    out.push('\\');
                    out.push(n);
                }
                None => return Err(format!("{pat:?}: the pattern ends in a lone backslash")),
            },
            '[' if !in_class => {
                in_class = true;
                out.push(c);
                // `[]...]` and `[^]...]`: a leading `]` is a literal in Python.
                if chars.peek() == Some(&'^') {
                    out.push(chars.next().unwrap());
                }
                if chars.peek() == Some(&']') {
                    chars.next();
                    out.push_str("\\]");
                }
            }
            // Python takes `{` literally unless a quantifier follows (`{2}`, `{2,}`, `{,3}`,
            // `{2,3}`); the regex crate would reject `http {`.
            '{' if !in_class => {
                let rest: String = chars.clone().take_while(|c| *c != '}').collect();
                let closed = chars.clone().nth(rest.chars().count()) == Some('}');
                let (lo, hi) = rest.split_once(',').unwrap_or((&rest, ""));
                let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
                let quantifier = closed && digits(lo) && digits(hi) && (!lo.is_empty() || !hi.is_empty());
                if !quantifier {
                    out.push_str("\\{");
                } else if lo.is_empty() {
                    out.push_str("{0");
                } else {
                    out.push('{');
                }
            }
            ']' if in_class => {
                in_class = false;
                out.push(c);
            }
            '(' if !in_class && chars.peek() == Some(&'?') => {
                let rest: String = chars.clone().take(3).collect();
                if rest.starts_with("?=") || rest.starts_with("?!") || rest.starts_with("?<=") || rest.starts_with("?<!") || rest.starts_with("?P=") {
                    backtrack = true;
                }
                out.push(c);
            }
            c => out.push(c),
        }
    }
    if !flags.is_empty() {
        out = format!("(?{flags}){out}");
    }
    if backtrack {
        return fancy_regex::Regex::new(&out).map(Regex::Fancy).map_err(|e| format!("invalid regular expression {pat:?}: {e}"));
    }
    regex::bytes::Regex::new(&out).map(Regex::Std).map_err(|e| format!("invalid regular expression {pat:?}: {e}"))
}

/// `match.expand(template)`: Python's `\1`, `\g<name>`, `\n` in the template.
pub fn expand(caps: &Captures<'_>, template: &str) -> Vec<u8> {
    let mut dst = Vec::new();
    caps.expand_rust(py_replacement(template).as_bytes(), &mut dst);
    dst
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_spellings_translate_and_unsupported_forms_are_refused() {
        let r = compile(r"^(\w+)=(.*)\Z").unwrap();
        let caps = r.captures(b"key=value").unwrap();
        assert_eq!(expand(&caps, r"\2 \g<1>"), b"value key");
        assert!(compile(r"[]a]").unwrap().is_match(b"]"));
        // `{` that is no quantifier is a literal, as in Python; quantifiers stay.
        assert!(compile("http {").unwrap().is_match(b"http {"));
        assert!(compile("^a{2}$").unwrap().is_match(b"aa"));
        assert!(compile("^a{,2}$").unwrap().is_match(b"aa"));
        assert!(compile("x{y}").unwrap().is_match(b"x{y}"));
        // What only backtracking runs, as Python runs it.
        assert!(compile(r"foo(?=bar)").unwrap().is_match(b"foobar"));
        assert!(!compile(r"foo(?=bar)").unwrap().is_match(b"foobaz"));
        assert!(compile(r"^(?!#)port").unwrap().is_match(b"port 22"));
        assert!(!compile(r"^(?!#)port").unwrap().is_match(b"#port 22"));
        assert!(compile(r"^(REF) .* \1$").unwrap().is_match(b"REF x REF"));
        assert!(!compile(r"^(REF) .* \1$").unwrap().is_match(b"REF x FER"));
        assert!(compile(r"(?P<w>a)(?P=w)").unwrap().is_match(b"aa"));
        let r = compile(r"(?<=k=)(\w+)").unwrap();
        let caps = r.captures(b"k=v1").unwrap();
        assert_eq!(expand(&caps, r"[\1]"), b"[v1]");
        assert_eq!(&*r.replace_all(b"k=a k=b", b"${1}${1}"), b"k=aa k=bb");
        assert_eq!(r.count(b"k=a k=b"), 2);
        assert!(compile(r"(").unwrap_err().contains("invalid regular expression"));
    }
}

/// Python's replacement syntax (`\1`, `\g<name>`) in Rust's (`${1}`, `${name}`).
/// Python's check of a replacement template: a backslash before an ASCII letter that is no
/// escape Python knows (`\\D`) is "bad escape \\D at position N".
pub fn check_replacement(rep: &str) -> Result<(), String> {
    let b = rep.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            match b.get(i + 1) {
                Some(c) if c.is_ascii_alphabetic() && !b"gntrabfv".contains(c) => return Err(format!("bad escape \\{} at position {i}", *c as char)),
                Some(_) => i += 1,
                None => return Err(format!("bad escape (end of pattern) at position {i}")),
            }
        }
        i += 1;
    }
    Ok(())
}

pub fn py_replacement(rep: &str) -> String {
    let mut out = String::new();
    let mut chars = rep.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '$' => out.push_str("$$"),
            '\\' => match chars.peek().copied() {
                Some(d) if d.is_ascii_digit() => {
                    let mut num = String::new();
                    while let Some(d) = chars.peek().copied().filter(|d| d.is_ascii_digit()) {
                        num.push(d);
                        chars.next();
                    }
                    out.push_str(&format!("${{{num}}}"));
                }
                Some('g') => {
                    chars.next();
                    if chars.peek() == Some(&'<') {
                        chars.next();
                        let name: String = chars.by_ref().take_while(|c| *c != '>').collect();
                        out.push_str(&format!("${{{name}}}"));
                    } else {
                        out.push_str("\\g");
                    }
                }
                Some('n') => { chars.next(); out.push('\n'); }
                Some('t') => { chars.next(); out.push('\t'); }
                Some('\\') => { chars.next(); out.push('\\'); }
                _ => out.push('\\'),
            },
            c => out.push(c),
        }
    }
    out
}
