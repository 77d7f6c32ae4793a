//! Python's `ast.literal_eval`, for INI inventory values as Ansible types them: numbers
//! (`80`, `-1`, `1.10`, `1e3`, `0x1F`, `1_000`), strings in quotes, `True`/`False`/`None`,
//! lists, tuples (as lists), dicts and sets of them. Anything else (`true`, `yes`, `0644`,
//! `a=b`) is not a literal: `None` here, and the caller keeps the text.

use serde_json::{Map, Number, Value as Json};

/// The value `text` is as a Python literal, if it is one.
pub fn literal_eval(text: &str) -> Option<Json> {
    let mut p = P { s: text.as_bytes(), i: 0 };
    let v = p.value()?;
    p.ws();
    (p.i == p.s.len()).then_some(v)
}

struct P<'a> {
    s: &'a [u8],
    i: usize,
}

impl P<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn value(&mut self) -> Option<Json> {
        self.ws();
        let v = match self.peek()? {
            b'[' => self.seq(b']'),
            b'(' => self.seq(b')'),
            b'{' => self.dict(),
            b'\'' | b'"' => {
                // Adjacent string literals concatenate, as in Python.
                let mut out = self.string()?;
                loop {
                    let save = self.i;
                    self.ws();
                    match self.peek() {
                        Some(b'\'' | b'"') => out.push_str(&self.string()?),
                        _ => {
                            self.i = save;
                            break;
                        }
                    }
                }
                Some(Json::String(out))
            }
            b'-' | b'+' | b'0'..=b'9' | b'.' => self.number(),
            _ => self.name(),
        }?;
        Some(v)
    }
    fn name(&mut self) -> Option<Json> {
        let start = self.i;
        while self.i < self.s.len() && (self.s[self.i].is_ascii_alphanumeric() || self.s[self.i] == b'_') {
            self.i += 1;
        }
        match &self.s[start..self.i] {
            b"True" => Some(Json::Bool(true)),
            b"False" => Some(Json::Bool(false)),
            b"None" => Some(Json::Null),
            _ => None,
        }
    }
    fn seq(&mut self, close: u8) -> Option<Json> {
        self.i += 1;
        let mut items = Vec::new();
        loop {
            self.ws();
            if self.peek()? == close {
                self.i += 1;
                return Some(Json::Array(items));
            }
            items.push(self.value()?);
            self.ws();
            match self.peek()? {
                b',' => self.i += 1,
                c if c == close => {}
                _ => return None,
            }
        }
    }
    fn dict(&mut self) -> Option<Json> {
        self.i += 1;
        let mut m = Map::new();
        let mut set = Vec::new();
        loop {
            self.ws();
            if self.peek()? == b'}' {
                self.i += 1;
                return Some(if set.is_empty() { Json::Object(m) } else { Json::Array(set) });
            }
            let k = self.value()?;
            self.ws();
            match self.peek()? {
                b':' if set.is_empty() => {
                    self.i += 1;
                    let v = self.value()?;
                    let key = match k {
                        Json::String(s) => s,
                        other => other.to_string(),
                    };
                    m.insert(key, v);
                }
                b',' | b'}' if m.is_empty() => set.push(k),
                _ => return None,
            }
            self.ws();
            match self.peek()? {
                b',' => self.i += 1,
                b'}' => {}
                _ => return None,
            }
        }
    }
    fn string(&mut self) -> Option<String> {
        let q = self.peek()?;
        let triple = self.s[self.i..].starts_with(&[q, q, q]);
        self.i += if triple { 3 } else { 1 };
        let mut out: Vec<u8> = Vec::new();
        loop {
            let c = self.peek()?;
            if triple && self.s[self.i..].starts_with(&[q, q, q]) {
                self.i += 3;
                break;
            }
            if !triple && c == q {
                self.i += 1;
                break;
            }
            if !triple && c == b'\n' {
                return None;
            }
            if c == b'\\' {
                self.i += 1;
                let e = self.peek()?;
                self.i += 1;
                match e {
                    b'n' => out.push(b'\n'),
                    b't' => out.push(b'\t'),
                    b'r' => out.push(b'\r'),
                    b'0' => out.push(0),
                    b'\\' => out.push(b'\\'),
                    b'\'' => out.push(b'\''),
                    b'"' => out.push(b'"'),
                    b'\n' => {}
                    other => {
                        out.push(b'\\');
                        out.push(other);
                    }
                }
                continue;
            }
            out.push(c);
            self.i += 1;
        }
        String::from_utf8(out).ok()
    }
    fn number(&mut self) -> Option<Json> {
        let start = self.i;
        let neg = match self.peek()? {
            b'-' => {
                self.i += 1;
                true
            }
            b'+' => {
                self.i += 1;
                false
            }
            _ => false,
        };
        self.ws();
        let body_start = self.i;
        while self.i < self.s.len() && (self.s[self.i].is_ascii_alphanumeric() || matches!(self.s[self.i], b'.' | b'_') || (matches!(self.s[self.i], b'+' | b'-') && matches!(self.s[self.i - 1], b'e' | b'E'))) {
            self.i += 1;
        }
        let body = std::str::from_utf8(&self.s[body_start..self.i]).ok()?;
        if body.is_empty() || body.starts_with('_') || body.ends_with('_') || body.contains("__") {
            return None;
        }
        let clean = body.replace('_', "");
        let lower = clean.to_ascii_lowercase();
        let int = |digits: &str, radix: u32| i64::from_str_radix(digits, radix).ok().map(|n| if neg { -n } else { n });
        let v = if let Some(h) = lower.strip_prefix("0x") {
            Json::from(int(h, 16)?)
        } else if let Some(o) = lower.strip_prefix("0o") {
            Json::from(int(o, 8)?)
        } else if let Some(b) = lower.strip_prefix("0b") {
            Json::from(int(b, 2)?)
        } else if clean.bytes().all(|b| b.is_ascii_digit()) {
            // Python 3: a decimal with a leading zero (0644) is a syntax error, except 0 itself.
            if clean.len() > 1 && clean.starts_with('0') && clean.bytes().any(|b| b != b'0') {
                return None;
            }
            match clean.parse::<i64>() {
                Ok(n) => Json::from(if neg { -n } else { n }),
                Err(_) => return None,
            }
        } else if lower.contains('j') {
            return None;
        } else {
            let f: f64 = lower.parse().ok()?;
            if !f.is_finite() || lower.contains("inf") || lower.contains("nan") {
                return None;
            }
            Json::Number(Number::from_f64(if neg { -f } else { f })?)
        };
        let _ = start;
        Some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::literal_eval;
    use serde_json::json;

    #[test]
    fn as_python_reads_them() {
        assert_eq!(literal_eval("80"), Some(json!(80)));
        assert_eq!(literal_eval("1.10"), Some(json!(1.1)));
        assert_eq!(literal_eval("[1, 13]"), Some(json!([1, 13])));
        assert_eq!(literal_eval("{'a': 'b', 'c': [1, 2]}"), Some(json!({"a": "b", "c": [1, 2]})));
        assert_eq!(literal_eval("\"quoted 80\""), Some(json!("quoted 80")));
        assert_eq!(literal_eval("0x1F"), Some(json!(31)));
        assert_eq!(literal_eval("1_000"), Some(json!(1000)));
        assert_eq!(literal_eval("-3"), Some(json!(-3)));
        assert_eq!(literal_eval("True"), Some(json!(true)));
        assert_eq!(literal_eval("(1, 2)"), Some(json!([1, 2])));
        for s in ["true", "yes", "0644", "a=b", "1.2.3", "foo bar", "inf", "80 90"] {
            assert_eq!(literal_eval(s), None, "{s}");
        }
    }
}
