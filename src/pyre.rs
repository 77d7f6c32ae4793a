//! Python regular expressions (`re`, as Ansible's modules use them) on the `regex` crate:
//! the syntax both share is taken as it is, Python's spellings that differ are translated
//! (`\Z`), and what `regex` cannot do (look-around, backreferences in the pattern) is refused
//! by name instead of matching something else.

/// A Python pattern compiled for bytes (a file's lines).
pub fn compile(pat: &str) -> Result<regex::bytes::Regex, String> {
    compile_flags(pat, "")
}

/// [`compile`] with Python's flags as inline ones (`"m"`: `re.MULTILINE`, `"s"`: `re.DOTALL`).
pub fn compile_flags(pat: &str, flags: &str) -> Result<regex::bytes::Regex, String> {
    let mut out = String::with_capacity(pat.len());
    let mut chars = pat.chars().peekable();
    let mut in_class = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('Z') if !in_class => out.push_str("\\z"),
                Some(d) if d.is_ascii_digit() && d != '0' && !in_class => {
                    return Err(format!("{pat:?}: backreferences in a pattern (\\{d}) are not supported by recover"));
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
                if rest.starts_with("?=") || rest.starts_with("?!") || rest.starts_with("?<=") || rest.starts_with("?<!") {
                    return Err(format!("{pat:?}: look-around ((?=, (?!, (?<=, (?<!) is not supported by recover"));
                }
                if rest.starts_with("?P=") {
                    return Err(format!("{pat:?}: named backreferences ((?P=name)) are not supported by recover"));
                }
                out.push(c);
            }
            c => out.push(c),
        }
    }
    if !flags.is_empty() {
        out = format!("(?{flags}){out}");
    }
    regex::bytes::Regex::new(&out).map_err(|e| format!("invalid regular expression {pat:?}: {e}"))
}

/// `match.expand(template)`: Python's `\1`, `\g<name>`, `\n` in the template.
pub fn expand(caps: &regex::bytes::Captures<'_>, template: &str) -> Vec<u8> {
    let mut dst = Vec::new();
    caps.expand(py_replacement(template).as_bytes(), &mut dst);
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
        assert!(compile(r"foo(?=bar)").unwrap_err().contains("look-around"));
        assert!(compile(r"(a)\1").unwrap_err().contains("backreferences"));
        assert!(compile(r"(").unwrap_err().contains("invalid regular expression"));
    }
}

/// Python's replacement syntax (`\1`, `\g<name>`) in Rust's (`${1}`, `${name}`).
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
