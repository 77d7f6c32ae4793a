//! Ansible's `version` test (also `version_compare`): `x is version('1.4', '<=')`, with
//! `strict=True` or `version_type` loose, strict, semver/semantic, as ansible-core compares
//! them (Python's LooseVersion and StrictVersion, and Ansible's SemanticVersion).

use std::cmp::Ordering;

use minijinja::value::{Kwargs, Value};
use minijinja::{Error, ErrorKind};

fn err(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.into())
}

/// One LooseVersion component: a number or a piece of text.
#[derive(Debug, PartialEq, Eq)]
enum Part {
    Num(u128),
    Text(String),
}

/// LooseVersion: digit runs, lowercase letter runs and whatever lies between them; dots dropped.
fn loose(v: &str) -> Vec<Part> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut kind = 0u8; // 1 digits, 2 lowercase, 3 other
    let flush = |cur: &mut String, kind: u8, out: &mut Vec<Part>| {
        if !cur.is_empty() {
            out.push(match kind {
                1 => cur.parse().map(Part::Num).unwrap_or_else(|_| Part::Text(cur.clone())),
                _ => Part::Text(cur.clone()),
            });
            cur.clear();
        }
    };
    for c in v.chars() {
        let k = if c.is_ascii_digit() {
            1
        } else if c.is_ascii_lowercase() {
            2
        } else if c == '.' {
            0
        } else {
            3
        };
        if k != kind || k == 0 {
            flush(&mut cur, kind, &mut out);
        }
        kind = k;
        if k != 0 {
            cur.push(c);
        }
    }
    flush(&mut cur, kind, &mut out);
    out
}

fn cmp_loose(a: &str, b: &str) -> Result<Ordering, Error> {
    let (x, y) = (loose(a), loose(b));
    for (p, q) in x.iter().zip(y.iter()) {
        let o = match (p, q) {
            (Part::Num(m), Part::Num(n)) => m.cmp(n),
            (Part::Text(m), Part::Text(n)) => m.cmp(n),
            _ => return Err(err(format!("Version comparison failed: '<' not supported between instances of 'int' and 'str' ({a:?} vs {b:?})"))),
        };
        if o != Ordering::Equal {
            return Ok(o);
        }
    }
    Ok(x.len().cmp(&y.len()))
}

/// StrictVersion: N.N[.N][(a|b)N].
fn strict(v: &str) -> Result<(u64, u64, u64, Option<(char, u64)>), Error> {
    let re = regex::Regex::new(r"^(\d+)\.(\d+)(?:\.(\d+))?(?:([ab])(\d+))?$").expect("static regex");
    let c = re.captures(v).ok_or_else(|| err(format!("Version comparison failed: invalid version number '{v}'")))?;
    let n = |i: usize| c.get(i).map(|m| m.as_str().parse::<u64>().unwrap_or(0)).unwrap_or(0);
    let pre = c.get(4).map(|m| (m.as_str().chars().next().unwrap_or('a'), n(5)));
    Ok((n(1), n(2), n(3), pre))
}

fn cmp_strict(a: &str, b: &str) -> Result<Ordering, Error> {
    let (x, y) = (strict(a)?, strict(b)?);
    let base = (x.0, x.1, x.2).cmp(&(y.0, y.1, y.2));
    if base != Ordering::Equal {
        return Ok(base);
    }
    Ok(match (x.3, y.3) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(p), Some(q)) => p.cmp(&q),
    })
}

/// SemVer 2.0.0: major.minor.patch[-pre][+build]; build metadata is ignored.
fn cmp_semver(a: &str, b: &str) -> Result<Ordering, Error> {
    let re = regex::Regex::new(r"^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$").expect("static regex");
    let parse = |v: &str| -> Result<((u64, u64, u64), Option<String>), Error> {
        let c = re.captures(v).ok_or_else(|| err(format!("Version comparison failed: invalid semantic version '{v}'")))?;
        let n = |i: usize| c[i].parse::<u64>().unwrap_or(0);
        Ok(((n(1), n(2), n(3)), c.get(4).map(|m| m.as_str().to_string())))
    };
    let (x, y) = (parse(a)?, parse(b)?);
    if x.0 != y.0 {
        return Ok(x.0.cmp(&y.0));
    }
    Ok(match (&x.1, &y.1) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(p), Some(q)) => {
            let (ps, qs): (Vec<&str>, Vec<&str>) = (p.split('.').collect(), q.split('.').collect());
            for (i, j) in ps.iter().zip(qs.iter()) {
                let o = match (i.parse::<u64>(), j.parse::<u64>()) {
                    (Ok(m), Ok(n)) => m.cmp(&n),
                    (Ok(_), Err(_)) => Ordering::Less,
                    (Err(_), Ok(_)) => Ordering::Greater,
                    _ => i.cmp(j),
                };
                if o != Ordering::Equal {
                    return Ok(o);
                }
            }
            ps.len().cmp(&qs.len())
        }
    })
}

/// The test: `value is version(other, operator='eq', strict=None, version_type=None)`.
pub fn version(value: Value, other: Value, op: Option<String>, kw: Kwargs) -> Result<bool, Error> {
    let op = match kw.get::<Option<String>>("operator")? {
        Some(o) => o,
        None => op.unwrap_or_else(|| "eq".into()),
    };
    let strict_flag = kw.get::<Option<bool>>("strict")?;
    let vtype = kw.get::<Option<String>>("version_type")?;
    kw.assert_all_used()?;
    if strict_flag.is_some() && vtype.is_some() {
        return Err(err("Cannot specify both 'strict' and 'version_type'"));
    }
    let a = crate::template::pyrepr::py_str(&value);
    let b = crate::template::pyrepr::py_str(&other);
    if a.is_empty() || value.is_none() || value.is_undefined() {
        return Err(err("Input version value cannot be empty"));
    }
    if b.is_empty() {
        return Err(err("Version parameter to compare against cannot be empty"));
    }
    let order = match (strict_flag.unwrap_or(false), vtype.as_deref()) {
        (true, _) | (false, Some("strict")) => cmp_strict(&a, &b)?,
        (false, None | Some("loose")) => cmp_loose(&a, &b)?,
        (false, Some("semver" | "semantic")) => cmp_semver(&a, &b)?,
        (false, Some("pep440")) => return Err(err("version_type 'pep440' is not supported by recover")),
        (false, Some(other)) => return Err(err(format!("Invalid version type ({other}). Must be one of 'loose', 'strict', 'semver', 'semantic', 'pep440'"))),
    };
    Ok(match op.as_str() {
        "==" | "=" | "eq" => order == Ordering::Equal,
        "<" | "lt" => order == Ordering::Less,
        "<=" | "le" => order != Ordering::Greater,
        ">" | "gt" => order == Ordering::Greater,
        ">=" | "ge" => order != Ordering::Less,
        "!=" | "<>" | "ne" => order != Ordering::Equal,
        other => return Err(err(format!("Invalid operator type ({other}). Must be one of '==', '=', 'eq', '<', 'lt', '<=', 'le', '>', 'gt', '>=', 'ge', '!=', '<>', 'ne'"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loose_strict_and_semver_order_as_python() {
        assert_eq!(cmp_loose("1.10", "1.9").unwrap(), Ordering::Greater);
        assert_eq!(cmp_loose("1.2.0", "1.2").unwrap(), Ordering::Greater);
        assert_eq!(cmp_loose("1.4rc1", "1.4").unwrap(), Ordering::Greater);
        assert!(cmp_loose("1.a", "1.1").is_err());
        assert_eq!(cmp_strict("1.0b1", "1.0").unwrap(), Ordering::Less);
        assert_eq!(cmp_strict("1.0", "1.0.0").unwrap(), Ordering::Equal);
        assert_eq!(cmp_semver("1.0.0-alpha", "1.0.0").unwrap(), Ordering::Less);
        assert_eq!(cmp_semver("1.0.0-alpha.1", "1.0.0-alpha.beta").unwrap(), Ordering::Less);
    }
}
