//! `command:` strings as words. Ansible renders the whole string and then splits it,
//! so a value holding spaces or quotes becomes several arguments (or fails to split).
//! `recover` splits the *source* first, as a POSIX shell would, keeping every
//! `{{ ... }}`, `{% ... %}` and `{# ... #}` whole, and then renders each word on its
//! own: one word of the source is one argument, whatever its values hold.

/// The words of `src` with quotes and backslashes removed; template markup is
/// kept verbatim inside its word. `Err` for an unclosed quote or markup.
pub fn split(src: &str) -> Result<Vec<String>, String> {
    let chars: Vec<char> = src.chars().collect();
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut i = 0;
    let mut quote: Option<char> = None;
    while i < chars.len() {
        let c = chars[i];
        // Template markup, inside or outside quotes, is copied whole.
        if c == '{' && i + 1 < chars.len() && matches!(chars[i + 1], '{' | '%' | '#') {
            let close = match chars[i + 1] {
                '{' => "}}",
                '%' => "%}",
                _ => "#}",
            };
            let rest: String = chars[i..].iter().collect();
            let end = rest[2..].find(close).ok_or_else(|| format!("unclosed `{}{}` in {src:?}", c, chars[i + 1]))? + 2 + close.len();
            cur.push_str(&rest[..end]);
            i += rest[..end].chars().count();
            in_word = true;
            continue;
        }
        match quote {
            Some('\'') => {
                if c == '\'' {
                    quote = None;
                } else {
                    cur.push(c);
                }
            }
            Some(_) => match c {
                '"' => quote = None,
                '\\' if i + 1 < chars.len() && matches!(chars[i + 1], '"' | '\\' | '$' | '`') => {
                    cur.push(chars[i + 1]);
                    i += 1;
                }
                _ => cur.push(c),
            },
            None => match c {
                '\'' | '"' => {
                    quote = Some(c);
                    in_word = true;
                }
                '\\' if i + 1 < chars.len() => {
                    if chars[i + 1] != '\n' {
                        cur.push(chars[i + 1]);
                        in_word = true;
                    }
                    i += 1;
                }
                c if c.is_whitespace() => {
                    if in_word {
                        words.push(std::mem::take(&mut cur));
                        in_word = false;
                    }
                }
                c => {
                    cur.push(c);
                    in_word = true;
                }
            },
        }
        i += 1;
    }
    if quote.is_some() {
        return Err(format!("unclosed quote in {src:?}"));
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn markup_stays_in_its_word_and_quotes_go() {
        assert_eq!(split("printf '[%s]\\n' {{ sp }}").unwrap(), vec!["printf", "[%s]\\n", "{{ sp }}"]);
        assert_eq!(split("a {{ x | default('y z') }}b \"c d\"").unwrap(), vec!["a", "{{ x | default('y z') }}b", "c d"]);
        assert_eq!(split("psql -c 'VACUUM {{ t }};'").unwrap(), vec!["psql", "-c", "VACUUM {{ t }};"]);
        assert_eq!(split("a\\ b \"q\\\"\"").unwrap(), vec!["a b", "q\""]);
        assert!(split("echo 'open").is_err());
        assert!(split("echo {{ open").is_err());
    }
}
