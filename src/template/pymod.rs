//! Python's `%` string formatting (`'%s:%d' % (host, port)`), which Jinja2 has from Python
//! and minijinja has not: before a template compiles, a `%` whose left operand is a string
//! literal becomes that literal's `format` filter (printf-style, as Python's `%`), so
//! `'%s:%d' % (host, port)` reads `('%s:%d' | format(host, port))`. A `%` between numbers
//! stays the modulo it is.

use std::borrow::Cow;

use minijinja::machinery::{tokenize, Token};
use minijinja::syntax::SyntaxConfig;

/// `src` with each `'literal' % operand` rewritten (see the module doc); `in_expr` for a bare
/// expression (`when:`), else template text.
pub fn rewrite(src: &str, in_expr: bool) -> Cow<'_, str> {
    if !maybe(src) {
        return Cow::Borrowed(src);
    }
    let mut toks = Vec::new();
    for t in tokenize(src, in_expr, SyntaxConfig::default()) {
        match t {
            Ok((tok, span)) => toks.push((tok, span.start_offset as usize, span.end_offset as usize)),
            // Not ours to report: the template's own compile says what is wrong.
            Err(_) => return Cow::Borrowed(src),
        }
    }
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    for i in 1..toks.len() {
        if !matches!(toks[i].0, Token::Mod) || !matches!(toks[i - 1].0, Token::Str(_) | Token::String(_)) {
            continue;
        }
        // The literal is a whole operand: nothing that binds as tightly as `%` before it.
        if i >= 2 && matches!(toks[i - 2].0, Token::Mul | Token::Div | Token::FloorDiv | Token::Mod | Token::Pow | Token::Dot | Token::Pipe) {
            continue;
        }
        let Some(end) = operand_end(&toks, i + 1) else { continue };
        let (lit_start, lit_end) = (toks[i - 1].1, toks[i - 1].2);
        let (rhs_start, rhs_end) = (toks[i + 1].1, toks[end - 1].2);
        // A tuple `(a, b)` gives the format's arguments; anything else is its one argument.
        let args = if matches!(toks[i + 1].0, Token::ParenOpen) && end - 1 > i + 1 && top_level_comma(&toks[i + 2..end - 1]) {
            src[toks[i + 1].2..toks[end - 1].1].to_string()
        } else {
            src[rhs_start..rhs_end].to_string()
        };
        if edits.last().is_some_and(|(_, e, _)| *e > lit_start) {
            continue;
        }
        edits.push((lit_start, rhs_end, format!("({} | format({args}))", &src[lit_start..lit_end])));
    }
    if edits.is_empty() {
        return Cow::Borrowed(src);
    }
    let mut out = src.to_string();
    for (s, e, text) in edits.into_iter().rev() {
        out.replace_range(s..e, &text);
    }
    Cow::Owned(out)
}

/// A cheap look for a quote followed by `%` (most templates have none).
fn maybe(src: &str) -> bool {
    let b = src.as_bytes();
    (0..b.len()).any(|i| {
        (b[i] == b'\'' || b[i] == b'"') && {
            let mut j = i + 1;
            while j < b.len() && b[j] == b' ' {
                j += 1;
            }
            j + 1 < b.len() && b[j] == b'%' && b[j + 1] != b'}'
        }
    })
}

/// Where the operand that starts at `k` ends (one past its last token): a primary, then its
/// attributes, subscripts, calls and filters.
fn operand_end(toks: &[(Token<'_>, usize, usize)], k: usize) -> Option<usize> {
    let mut k = match toks.get(k)?.0 {
        Token::Ident(_) | Token::Str(_) | Token::String(_) | Token::Int(_) | Token::Int128(_) | Token::Float(_) => k + 1,
        Token::ParenOpen | Token::BracketOpen | Token::BraceOpen => matching(toks, k)? + 1,
        _ => return None,
    };
    loop {
        match toks.get(k).map(|t| &t.0) {
            Some(Token::Dot) if matches!(toks.get(k + 1).map(|t| &t.0), Some(Token::Ident(_)) | Some(Token::Int(_))) => k += 2,
            Some(Token::BracketOpen) | Some(Token::ParenOpen) => k = matching(toks, k)? + 1,
            Some(Token::Pipe) if matches!(toks.get(k + 1).map(|t| &t.0), Some(Token::Ident(_))) => {
                k += 2;
                while matches!(toks.get(k).map(|t| &t.0), Some(Token::Dot)) && matches!(toks.get(k + 1).map(|t| &t.0), Some(Token::Ident(_))) {
                    k += 2;
                }
                if matches!(toks.get(k).map(|t| &t.0), Some(Token::ParenOpen)) {
                    k = matching(toks, k)? + 1;
                }
            }
            _ => return Some(k),
        }
    }
}

/// The index of the bracket that closes the one at `k`.
fn matching(toks: &[(Token<'_>, usize, usize)], k: usize) -> Option<usize> {
    let mut depth = 0i32;
    for (j, t) in toks.iter().enumerate().skip(k) {
        match t.0 {
            Token::ParenOpen | Token::BracketOpen | Token::BraceOpen => depth += 1,
            Token::ParenClose | Token::BracketClose | Token::BraceClose => {
                depth -= 1;
                if depth == 0 {
                    return Some(j);
                }
            }
            Token::VariableEnd | Token::BlockEnd => return None,
            _ => {}
        }
    }
    None
}

fn top_level_comma(toks: &[(Token<'_>, usize, usize)]) -> bool {
    let mut depth = 0i32;
    for t in toks {
        match t.0 {
            Token::ParenOpen | Token::BracketOpen | Token::BraceOpen => depth += 1,
            Token::ParenClose | Token::BracketClose | Token::BraceClose => depth -= 1,
            Token::Comma if depth == 0 => return true,
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::rewrite;

    #[test]
    fn percent_formatting_becomes_the_format_filter() {
        assert_eq!(rewrite("{{ '%s-%s' % ('a', b) }}", false), "{{ ('%s-%s' | format('a', b)) }}");
        assert_eq!(rewrite("{{ '%02d' % item }}x", false), "{{ ('%02d' | format(item)) }}x");
        assert_eq!(rewrite("'%s' % x.y[0] | upper", true), "('%s' | format(x.y[0] | upper))");
        assert_eq!(rewrite("\"%d\" % (n + 1)", true), "(\"%d\" | format((n + 1)))");
        assert_eq!(rewrite("{{ 7 % 3 }} {% if x %}y{% endif %}", false), "{{ 7 % 3 }} {% if x %}y{% endif %}");
        assert_eq!(rewrite("{{ 'a' ~ '%s' % x }}", false), "{{ 'a' ~ ('%s' | format(x)) }}");
    }
}
