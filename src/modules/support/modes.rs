//! Symbolic file modes (`u=rwx,g=rx,o=rx`, `a+X`, `go-w`), as ansible-core reads them
//! (`AnsibleModule._symbolic_mode_to_octal`): each comma-separated clause is who (`ugoa`, or
//! none: all, within the umask), then one or more operator (`+ - =`) and permissions
//! (`rwxXst`, or a copy of `u`, `g` or `o`).
//!
//! A symbolic mode is relative: ansible-core applies it to the path as it is when the module
//! sets the mode (a new file or folder as just made, under the user's umask). [`resolve`] does
//! the same in one round trip before the module plans, and hands the module the octal mode it
//! would end up with, so every module keeps comparing octal modes.

use serde_json::Value as Json;

use crate::modules::{StepCtx, StepError};
use crate::transport::{quote, Cmd};

const PERM_BITS: u32 = 0o7777;

/// Whether `s` is a symbolic mode ansible-core accepts (`Err` says why it is not).
pub fn check(s: &str) -> Result<(), String> {
    parse(s).map(|_| ())
}

/// One clause: who, then (operator, permissions) pairs.
type Clause = (String, bool, Vec<(char, String)>);

fn parse(s: &str) -> Result<Vec<Clause>, String> {
    let bad = |m: &str| format!("bad symbolic permission for mode: {m}");
    let mut out = Vec::new();
    for clause in s.split(',') {
        let at = clause.find(['+', '-', '=']).ok_or_else(|| bad(clause))?;
        let who = &clause[..at];
        let use_umask = who.is_empty();
        let who = if who.is_empty() || who == "a" { "ugo".to_string() } else { who.to_string() };
        if !who.chars().all(|c| "ugo".contains(c)) {
            return Err(bad(clause));
        }
        let mut ops = Vec::new();
        let rest = &clause[at..];
        let mut chars = rest.char_indices().peekable();
        while let Some((i, op)) = chars.next() {
            let mut end = rest.len();
            while let Some(&(j, c)) = chars.peek() {
                if "+-=".contains(c) {
                    end = j;
                    break;
                }
                chars.next();
            }
            let perms = &rest[i + 1..end];
            if !perms.chars().all(|c| "rwxXstugo".contains(c)) {
                return Err(bad(clause));
            }
            ops.push((op, perms.to_string()));
        }
        out.push((who, use_umask, ops));
    }
    Ok(out)
}

/// The mode `spec` gives a path whose mode is `current` (a folder when `is_dir`), for a user
/// whose umask is `umask`: ansible-core's arithmetic, bit for bit.
pub fn apply(spec: &str, current: u32, is_dir: bool, umask: u32) -> Result<u32, String> {
    let mut mode = current & PERM_BITS;
    for (who, use_umask, ops) in parse(spec)? {
        for (op, perms) in ops {
            for user in who.chars() {
                let bits = perm_bits(user, &perms, use_umask, mode, is_dir, umask);
                mode = match op {
                    '=' => {
                        let mask = match user {
                            'u' => 0o4700,
                            'g' => 0o2070,
                            _ => 0o1007,
                        };
                        (mode & (mask ^ PERM_BITS)) | bits
                    }
                    '+' => mode | bits,
                    _ => mode & !bits,
                };
            }
        }
    }
    Ok(mode)
}

fn perm_bits(user: char, perms: &str, use_umask: bool, prev: u32, is_dir: bool, umask: u32) -> u32 {
    let rev = umask ^ PERM_BITS;
    let x_any = prev & 0o111 != 0;
    let (r, w, x, shift) = match user {
        'u' => (0o400, 0o200, 0o100, 6),
        'g' => (0o040, 0o020, 0o010, 3),
        _ => (0o004, 0o002, 0o001, 0),
    };
    let masked = |b: u32| if use_umask { rev & b } else { b };
    perms.chars().fold(0, |acc, p| {
        acc | match p {
            'r' => masked(r),
            'w' => masked(w),
            'x' => masked(x),
            'X' if is_dir || x_any => x,
            'X' => 0,
            's' if user == 'u' => 0o4000,
            's' if user == 'g' => 0o2000,
            't' if user == 'o' => 0o1000,
            // A copy of another class's bits, moved to this class's place.
            'u' => ((prev >> 6) & 0o7) << shift,
            'g' => ((prev >> 3) & 0o7) << shift,
            'o' => (prev & 0o7) << shift,
            _ => 0,
        }
    })
}

/// Where [`resolve`] leaves a symbolic `mode` of `file recurse=yes`, and the step's umask.
pub const RECURSE_SYMBOLIC: &str = "_recover_symbolic_mode";
pub const RECURSE_UMASK: &str = "_recover_umask";

/// Whether a mode argument is symbolic (not octal, not a template, not `preserve`).
pub fn is_symbolic(v: &Json) -> bool {
    match v {
        Json::String(s) => {
            let t = s.trim();
            t.contains(['+', '-', '=']) && u32::from_str_radix(t.trim_start_matches("0o"), 8).is_err() && !crate::template::is_template(t)
        }
        _ => false,
    }
}

/// Replaces a symbolic `mode` (and `directory_mode`) in a step's rendered arguments by the
/// octal mode ansible-core would give the path: relative to its mode now, or, for a path the
/// step makes, to what it is made with (a folder 0777, a file 0666, less the umask of the user
/// the step runs as). One round trip, only when a mode is symbolic.
pub async fn resolve(ctx: &StepCtx<'_>, module: &str, args: &mut Json) -> Result<(), StepError> {
    let Json::Object(m) = args else { return Ok(()) };
    // `mode` of these is a file mode (async_status's is not).
    if !matches!(module, "file" | "copy" | "template" | "assemble" | "blockinfile" | "lineinfile" | "replace" | "get_url" | "unarchive" | "uri" | "apt_repository") {
        return Ok(());
    }
    let symbolic: Vec<&str> = ["mode", "directory_mode"].into_iter().filter(|k| m.get(*k).is_some_and(is_symbolic)).collect();
    if symbolic.is_empty() {
        return Ok(());
    }
    let refuse = |why: &str| Err(StepError::failed(format!("{module}: a symbolic mode {why} is not supported by recover; write it in octal")));
    if module == "unarchive" {
        return refuse("applied to every file of a tree (unarchive)");
    }
    let recurse = module == "file" && m.get("recurse").and_then(crate::modules::de::bool_value) == Some(true);
    let path = ["path", "dest", "name"].iter().find_map(|k| m.get(*k).and_then(Json::as_str)).unwrap_or_default().to_string();
    let out = ctx.run(Cmd::shell(format!("umask; stat -L -c '%f' -- {} 2>/dev/null || echo ABSENT", quote::quote(&path))).label(format!("read the mode of {path}"))).await?;
    let text = out.stdout_str();
    let mut lines = text.lines();
    let umask = lines.next().and_then(|u| u32::from_str_radix(u.trim(), 8).ok()).unwrap_or(0o022);
    let now = lines.next().and_then(|l| u32::from_str_radix(l.trim(), 16).ok());
    let state = m.get("state").and_then(Json::as_str).unwrap_or_default().to_string();
    for k in symbolic {
        let spec = m.get(k).and_then(Json::as_str).unwrap_or_default().to_string();
        // `file recurse` applies it to each path below as ansible-core does, each from its own
        // mode: the module gets the spec and the umask.
        if recurse && k == "mode" {
            m.remove("mode");
            m.insert(RECURSE_SYMBOLIC.into(), Json::String(spec));
            m.insert(RECURSE_UMASK.into(), Json::from(umask));
            continue;
        }
        // A folder the step makes: `file state=directory`, or the folders `directory_mode` is for.
        let makes_dir = k == "directory_mode" || (module == "file" && state == "directory");
        let (base, is_dir) = match now {
            Some(raw) if k == "mode" => (raw & PERM_BITS, raw & 0o170000 == 0o040000),
            _ if makes_dir => (0o777 & !umask, true),
            _ => (0o666 & !umask, false),
        };
        let octal = apply(&spec, base, is_dir, umask).map_err(StepError::failed)?;
        m.insert(k.to_string(), Json::String(format!("{octal:04o}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::apply;

    #[test]
    fn symbolic_modes_follow_ansible_core() {
        assert_eq!(apply("u=rwx,g=rx,o=rx", 0o600, false, 0o022), Ok(0o755));
        assert_eq!(apply("u=rw,g=r,o=r", 0o777, false, 0o022), Ok(0o644));
        assert_eq!(apply("a+x", 0o644, false, 0o022), Ok(0o755));
        assert_eq!(apply("go-rwx", 0o755, false, 0o022), Ok(0o700));
        assert_eq!(apply("+w", 0o444, false, 0o022), Ok(0o644));
        assert_eq!(apply("a+X", 0o644, false, 0o022), Ok(0o644));
        assert_eq!(apply("a+X", 0o644, true, 0o022), Ok(0o755));
        assert_eq!(apply("a+X", 0o744, false, 0o022), Ok(0o755));
        assert_eq!(apply("u=rw-x+X,g=r-x+X,o=r-x+X", 0o700, true, 0o022), Ok(0o755));
        assert_eq!(apply("g=u", 0o750, false, 0o022), Ok(0o770));
        assert_eq!(apply("u+s,g+s,o+t", 0o755, true, 0o022), Ok(0o7755));
        assert_eq!(apply("u=rwx", 0o4755, false, 0o022), Ok(0o0755));
        assert!(apply("z=rw", 0o644, false, 0o022).is_err());
        assert!(apply("u=rwq", 0o644, false, 0o022).is_err());
        assert!(apply("rw", 0o644, false, 0o022).is_err());
    }
}
