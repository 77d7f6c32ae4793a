//! Host ranges in inventory names: `web[01:03]`, `db-[a:c]`, `n[0:10:5]`.

/// The most hosts one name may expand to (the product of all its ranges).
pub const MAX_HOSTS: u64 = 100_000;

/// Expands every `[start:end(:step)]` in `name`. Errors say what is wrong; a name whose
/// ranges multiply to more than [`MAX_HOSTS`] is refused before anything is expanded.
pub fn expand(name: &str) -> Result<Vec<String>, String> {
    let n = count(name)?;
    if n > MAX_HOSTS {
        return Err(format!("host range {name:?} expands to {} hosts, more than {MAX_HOSTS}", if n == u64::MAX { "too many".to_string() } else { n.to_string() }));
    }
    expand_all(name)
}

/// How many names `name` expands to, without expanding it (saturating).
fn count(name: &str) -> Result<u64, String> {
    let mut total: u64 = 1;
    let mut rest = name;
    while let Some(open) = rest.find('[') {
        let close = rest[open..].find(']').map(|i| open + i).ok_or_else(|| format!("unclosed '[' in host range {name:?}"))?;
        let parts: Vec<&str> = rest[open + 1..close].split(':').collect();
        let step: u64 = parts.get(2).and_then(|s| s.parse().ok()).filter(|s| *s > 0).unwrap_or(1);
        let span = match (parts.first().map(|s| s.parse::<u64>()), parts.get(1).map(|s| s.parse::<u64>())) {
            (Some(Ok(a)), Some(Ok(b))) if b >= a => (b - a) / step + 1,
            (Some(Err(_)), Some(Ok(b))) if parts[0].is_empty() => b / step + 1,
            _ => 26,
        };
        total = total.saturating_mul(span);
        rest = &rest[close + 1..];
    }
    Ok(total)
}

fn expand_all(name: &str) -> Result<Vec<String>, String> {
    let Some(open) = name.find('[') else { return Ok(vec![name.to_string()]) };
    let close = name[open..].find(']').map(|i| open + i).ok_or_else(|| format!("unclosed '[' in host range {name:?}"))?;
    let spec = &name[open + 1..close];
    let (head, tail) = (&name[..open], &name[close + 1..]);
    let parts: Vec<&str> = spec.split(':').collect();
    if parts.len() < 2 || parts.len() > 3 {
        return Err(format!("host range {name:?} must look like [start:end] or [start:end:step]"));
    }
    let step: usize = match parts.get(2) {
        Some(s) => s.parse().map_err(|_| format!("bad step {s:?} in host range {name:?}"))?,
        None => 1,
    };
    if step == 0 {
        return Err(format!("step 0 in host range {name:?}"));
    }
    let (start, end) = (parts[0], parts[1]);
    let mut items = Vec::new();
    if start.chars().all(|c| c.is_ascii_digit()) && end.chars().all(|c| c.is_ascii_digit()) && !end.is_empty() {
        let width = start.len();
        let s: u64 = if start.is_empty() { 0 } else { start.parse().map_err(|_| format!("bad range start in {name:?}"))? };
        let e: u64 = end.parse().map_err(|_| format!("bad range end in {name:?}"))?;
        if e < s {
            return Err(format!("range end before start in {name:?}"));
        }
        if (e - s) / step as u64 > 100_000 {
            return Err(format!("host range {name:?} expands to more than 100000 hosts"));
        }
        for n in (s..=e).step_by(step) {
            items.push(format!("{n:0width$}"));
        }
    } else if start.len() == 1 && end.len() == 1 && start.chars().all(|c| c.is_ascii_alphabetic()) && end.chars().all(|c| c.is_ascii_alphabetic()) {
        let (s, e) = (start.as_bytes()[0], end.as_bytes()[0]);
        if e < s {
            return Err(format!("range end before start in {name:?}"));
        }
        for c in (s..=e).step_by(step) {
            items.push((c as char).to_string());
        }
    } else {
        return Err(format!("host range {name:?}: start and end must both be numbers or single letters"));
    }
    let mut out = Vec::new();
    for item in items {
        for rest in expand_all(tail)? {
            out.push(format!("{head}{item}{rest}"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::expand;

    #[test]
    fn ranges() {
        assert_eq!(expand("web[01:03]").unwrap(), ["web01", "web02", "web03"]);
        assert_eq!(expand("db-[a:c]").unwrap(), ["db-a", "db-b", "db-c"]);
        assert_eq!(expand("n[0:10:5]").unwrap(), ["n0", "n5", "n10"]);
        assert_eq!(expand("r[1:2]-[a:b]").unwrap(), ["r1-a", "r1-b", "r2-a", "r2-b"]);
        assert!(expand("bad[1:").is_err());
        assert!(expand("bad[x:9]").is_err());
        let bomb = expand("web[0:9][0:9][0:9][0:9][0:9][0:9][0:9][0:9]").unwrap_err();
        assert!(bomb.contains("100000000 hosts"), "{bomb}");
    }
}
