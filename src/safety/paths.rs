//! Remote paths as the safety engine compares them: normalised lexically
//! (`/x/./y/../z` is `/x/z`), so that `..` cannot walk a delete onto `/` and a
//! backup root cannot hide inside the folder a step removes.

/// The system roots no step may delete, move or replace as a whole.
pub const SYSTEM_ROOTS: &[&str] = &[
    "/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/libx32", "/media", "/mnt", "/opt", "/proc", "/root", "/run", "/sbin", "/srv", "/sys",
    "/tmp", "/usr", "/usr/bin", "/usr/lib", "/usr/local", "/usr/sbin", "/usr/share", "/var", "/var/lib", "/var/log", "/var/backups",
];

/// `path` with `.`, `..`, repeated and trailing slashes resolved lexically. A
/// relative path stays relative (its `..` at the front are kept).
pub fn normalize(path: &str) -> String {
    let absolute = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !absolute {
                    parts.push("..");
                }
            }
            p => parts.push(p),
        }
    }
    let joined = parts.join("/");
    if absolute {
        format!("/{joined}")
    } else if joined.is_empty() {
        ".".into()
    } else {
        joined
    }
}

/// Is `inner` equal to `outer` or inside it (both normalised)?
pub fn within(inner: &str, outer: &str) -> bool {
    let (i, o) = (normalize(inner), normalize(outer));
    i == o || o == "/" || i.starts_with(&format!("{o}/"))
}

/// Do the two paths overlap: one equal to the other or inside it?
pub fn overlap(a: &str, b: &str) -> bool {
    within(a, b) || within(b, a)
}

/// The system root `path` names, if it names one (after normalising).
pub fn system_root(path: &str) -> Option<&'static str> {
    let n = normalize(path);
    SYSTEM_ROOTS.iter().copied().find(|r| *r == n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotdot_cannot_escape_and_roots_are_found() {
        assert_eq!(normalize("/tmp/x/../../.."), "/");
        assert_eq!(normalize("/a/./b//c/"), "/a/b/c");
        assert_eq!(normalize("a/../../b"), "../b");
        assert_eq!(system_root("/tmp/x/../../.."), Some("/"));
        assert_eq!(system_root("/etc/"), Some("/etc"));
        assert_eq!(system_root("/etc/nginx"), None);
    }

    #[test]
    fn overlap_is_by_component_not_by_prefix() {
        assert!(overlap("/x/victim", "/x/victim/backups"));
        assert!(overlap("/x/victim/backups", "/x/victim"));
        assert!(overlap("/x/victim/", "/x/victim"));
        assert!(!overlap("/x/victim", "/x/victim2"));
        assert!(within("/x/a/../victim/b", "/x/victim"));
    }
}
