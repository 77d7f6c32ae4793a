//! The values a run must never show (DESIGN invariant 14): no_log and secret-named variables'
//! values, vault plaintext, the become password, private prompts, and every value derived from
//! one of them while templating (taint: a template that read a secret makes a secret).
//!
//! One registry for the process (a run is one process), below every room that shows text:
//! the reporter masks events with it, the transport masks a sudo error with it, the template
//! engine adds what it derives from it, the saved plan stores args masked by it.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::RwLock;

use serde_json::Value as Json;

/// The mask shown instead of a secret.
pub const MASK: &str = "********";

/// Values shorter than this are never registered (masking `abc` everywhere would hide text,
/// not a secret).
const MIN_LEN: usize = 4;
/// Derived values longer than this are not registered (a whole rendered file): the secret it
/// holds is masked inside it already.
const MAX_DERIVED: usize = 64 * 1024;

static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());
static ANY: AtomicBool = AtomicBool::new(false);

/// Variable names whose values are secrets: `*password*`, `*passwd*`, `*token*`, `*secret*`,
/// `*api_key*`, `*private_key*` (but not `*_file`, a path), and `*_pass` (`ansible_become_pass`,
/// `ansible_ssh_pass`, Ansible's documented aliases).
pub fn is_secret_name(name: &str) -> bool {
    let n = name.to_lowercase();
    !n.ends_with("_file") && (["password", "passwd", "token", "secret", "api_key", "apikey", "private_key"].iter().any(|w| n.contains(w)) || n.ends_with("_pass") || n == "pass")
}

/// Never show these values. Short ones (under 4 characters) are ignored.
pub fn add<I: IntoIterator<Item = String>>(values: I) {
    let Ok(mut s) = SECRETS.write() else { return };
    let before = s.len();
    for v in values {
        if v.chars().count() >= MIN_LEN && !s.contains(&v) {
            s.push(v);
        }
    }
    if s.len() != before {
        // Longest first, so a secret containing another is masked whole.
        s.sort_by_key(|x| std::cmp::Reverse(x.len()));
        ANY.store(true, Ordering::Release);
    }
}

/// Every secret registered so far (longest first).
pub fn all() -> Vec<String> {
    SECRETS.read().map(|s| s.clone()).unwrap_or_default()
}

/// Whether any secret is registered (the fast path of every check).
pub fn any() -> bool {
    ANY.load(Ordering::Acquire)
}

/// Does `text` hold a secret?
pub fn holds(text: &str) -> bool {
    any() && SECRETS.read().map(|s| s.iter().any(|x| text.contains(x.as_str()))).unwrap_or(false)
}

/// `text` with every secret in it replaced by [`MASK`].
pub fn mask_str(text: &str) -> String {
    if !any() {
        return text.to_string();
    }
    let mut out = text.to_string();
    if let Ok(s) = SECRETS.read() {
        for x in s.iter() {
            if out.contains(x.as_str()) {
                out = out.replace(x.as_str(), MASK);
            }
        }
    }
    out
}

/// Every string inside `v` with its secrets masked.
pub fn mask_json(v: &mut Json) {
    if !any() {
        return;
    }
    match v {
        Json::String(s) => {
            if holds(s) {
                *s = mask_str(s);
            }
        }
        Json::Array(items) => items.iter_mut().for_each(mask_json),
        Json::Object(m) => m.values_mut().for_each(mask_json),
        _ => {}
    }
}

thread_local! {
    /// Set when a template read a secret while rendering (see [`Taint`]).
    static TAINTED: Cell<bool> = const { Cell::new(false) };
}

/// Marks the render under way on this thread as having read a secret.
pub fn touched() {
    TAINTED.with(|t| t.set(true));
}

/// Whether `v` (a value a template read) holds a secret: a string that contains one, or a
/// list or mapping with such a string inside (looked at up to a bound).
pub fn value_holds(v: &minijinja::Value) -> bool {
    if !any() {
        return false;
    }
    // Plain data only (lists and mappings of values): a lazy object (another host's
    // variables) is checked when a template reads into it, never walked here, which could
    // run its lookups.
    fn walk(v: &minijinja::Value, budget: &mut usize) -> bool {
        use minijinja::Value;
        if *budget == 0 {
            return false;
        }
        *budget -= 1;
        if let Some(s) = v.as_str() {
            return holds(s);
        }
        if let Some(seq) = v.downcast_object_ref::<Vec<Value>>() {
            return seq.iter().any(|x| walk(x, budget));
        }
        if let Some(map) = v.downcast_object_ref::<indexmap::IndexMap<Value, Value>>() {
            return map.iter().any(|(k, x)| walk(k, budget) || walk(x, budget));
        }
        false
    }
    let mut budget = 20_000;
    walk(v, &mut budget)
}

/// One render's taint scope: [`Taint::begin`] before it, [`Taint::end`] after, which says
/// whether it read a secret (and passes that on to the render around it).
pub struct Taint(bool);

impl Taint {
    pub fn begin() -> Taint {
        Taint(TAINTED.with(|t| t.replace(false)))
    }
    /// Whether the render read a secret; registers `derived` (what it made) as a secret when so.
    pub fn end(self, derived: &[&str]) -> bool {
        let tainted = TAINTED.with(|t| t.get());
        TAINTED.with(|t| t.set(self.0 || tainted));
        if tainted {
            add(derived.iter().filter(|d| d.len() <= MAX_DERIVED).map(|d| d.to_string()));
        }
        tainted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_masks() {
        assert!(is_secret_name("ansible_become_pass") && is_secret_name("ansible_ssh_pass") && !is_secret_name("bypass_cache"));
        assert!(is_secret_name("DB_PASSWORD") && is_secret_name("api_token") && !is_secret_name("ansible_ssh_private_key_file") && !is_secret_name("port"));
        add(["unit-secret-1".to_string()]);
        assert_eq!(mask_str("a unit-secret-1 b"), format!("a {MASK} b"));
        let t = Taint::begin();
        touched();
        assert!(t.end(&["derived-unit-value"]));
        assert!(holds("x derived-unit-value y"));
        let t = Taint::begin();
        assert!(!t.end(&["not-a-secret-value"]));
        assert!(!holds("not-a-secret-value"));
    }
}
