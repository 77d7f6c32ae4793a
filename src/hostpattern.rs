//! Host patterns, as Ansible reads them: `all`, `*`, globs (`k3s-*`),
//! regexes (`~web\d+`), unions (`a:b`, `a,b`), intersections (`a:&b`),
//! exclusions (`a:!b`). Unions apply first, then intersections, then
//! exclusions; hosts keep inventory order. Over any [`HostSet`]: an inventory, or the `groups`
//! a template sees (the `inventory_hostnames` lookup), so it sits below both.

/// What a pattern selects from: an inventory's groups and hosts, in inventory order.
pub trait HostSet {
    /// Every host of a group, its children's too (`all`: every host); empty when there is none.
    fn group_hosts(&self, group: &str) -> Vec<String>;
    /// The group of that name (its canonical name), if there is one.
    fn group_named(&self, name: &str) -> Option<String>;
    fn has_host(&self, name: &str) -> bool;
    fn group_names(&self) -> Vec<String>;
    fn host_names(&self) -> Vec<String>;
}

/// The hosts `pattern` selects, in inventory order. An error names a term that matches nothing.
pub fn select(inv: &dyn HostSet, pattern: &str) -> Result<Vec<String>, String> {
    let terms: Vec<&str> = split_terms(pattern);
    if terms.is_empty() {
        return Err("empty host pattern".into());
    }
    // As ansible-core: the plain terms first (their hosts in the order each matches them), then
    // each `&` term, then each `!` term; only `&`/`!` terms start from all hosts.
    let mut union: Vec<String> = Vec::new();
    let mut intersect: Vec<Vec<String>> = Vec::new();
    let mut exclude: Vec<String> = Vec::new();
    for term in terms {
        if let Some(t) = term.strip_prefix('&') {
            intersect.push(match_term(inv, t)?);
        } else if let Some(t) = term.strip_prefix('!') {
            exclude.extend(match_term(inv, t)?);
        } else {
            for h in match_term(inv, term)? {
                if !union.contains(&h) {
                    union.push(h);
                }
            }
        }
    }
    if union.is_empty() && (!intersect.is_empty() || !exclude.is_empty()) {
        union = match_term(inv, "all")?;
    }
    Ok(union.into_iter().filter(|h| intersect.iter().all(|set| set.contains(h))).filter(|h| !exclude.contains(h)).collect())
}

/// Splits on `:` and `,`, keeping `:` inside an IPv6 address or `[a:b]` subscript whole.
fn split_terms(pattern: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    for (i, c) in pattern.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            ':' | ',' if depth == 0 => {
                out.push(&pattern[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&pattern[start..]);
    out.into_iter().map(str::trim).filter(|t| !t.is_empty()).collect()
}

/// `group[2]`, `group[-1]`, `group[0:9]` (inclusive, as ansible-core), `group[3:]`: the term
/// and the subscript it ends in (never on a `~regex`).
fn split_subscript(term: &str) -> Option<(&str, (i64, Option<i64>))> {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    if term.starts_with('~') {
        return None;
    }
    let re = RE.get_or_init(|| regex::Regex::new(r"^(.+)\[(?:(-?[0-9]+)|([0-9]+)[:-]([0-9]*))\]$").expect("static regex"));
    let c = re.captures(term)?;
    let base = c.get(1)?.as_str();
    if let Some(i) = c.get(2) {
        return Some((base, (i.as_str().parse().ok()?, None)));
    }
    let start = c.get(3)?.as_str().parse().ok()?;
    let end = c.get(4).map(|m| m.as_str()).filter(|e| !e.is_empty()).map(|e| e.parse().unwrap_or(-1)).unwrap_or(-1);
    Some((base, (start, Some(end))))
}

fn match_term(inv: &dyn HostSet, term: &str) -> Result<Vec<String>, String> {
    if let Some((base, (start, end))) = split_subscript(term) {
        let hosts = match_term(inv, base)?;
        let n = hosts.len() as i64;
        let at = |i: i64| if i < 0 { n + i } else { i };
        return Ok(match end {
            None => usize::try_from(at(start)).ok().and_then(|i| hosts.get(i).cloned()).into_iter().collect(),
            Some(e) => {
                let last = if e == -1 { n - 1 } else { e.min(n - 1) };
                let first = start.max(0);
                if first > last { Vec::new() } else { hosts[first as usize..=last as usize].to_vec() }
            }
        });
    }
    if term == "all" || term == "*" {
        return Ok(inv.group_hosts("all"));
    }
    if let Some(group) = inv.group_named(term) {
        return Ok(inv.group_hosts(&group));
    }
    if inv.has_host(term) {
        return Ok(vec![term.to_string()]);
    }
    let matcher: Box<dyn Fn(&str) -> bool> = if let Some(re) = term.strip_prefix('~') {
        let re = regex::Regex::new(re).map_err(|e| format!("bad regex in host pattern {term:?}: {e}"))?;
        Box::new(move |s| re.is_match(s))
    } else if term.contains(['*', '?', '[']) {
        let glob = glob::Pattern::new(term).map_err(|e| format!("bad glob in host pattern {term:?}: {e}"))?;
        Box::new(move |s| glob.matches(s))
    } else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for g in inv.group_names().iter().filter(|g| matcher(g)) {
        out.extend(inv.group_hosts(g));
    }
    out.extend(inv.host_names().into_iter().filter(|h| matcher(h)));
    let mut seen = Vec::new();
    out.retain(|h| if seen.contains(h) { false } else { seen.push(h.clone()); true });
    Ok(out)
}
