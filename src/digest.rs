//! Small shared formatters of digests and sizes, below every room that shows them (the plan,
//! the reporter, the backups, the saved inputs).

use sha2::Digest as _;

/// The sha256 of `bytes`, in lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", sha2::Sha256::digest(bytes))
}

/// A digest as people compare it at a glance: its first 12 characters.
pub fn short(digest: &str) -> &str {
    &digest[..digest.len().min(12)]
}

/// `1.5 GiB`, `320.0 KiB`, `12 B`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats() {
        assert_eq!(super::short("0123456789abcdef"), "0123456789ab");
        assert_eq!(super::human_bytes(1536), "1.5 KiB");
        assert_eq!(super::human_bytes(12), "12 B");
        assert_eq!(super::sha256_hex(b"").len(), 64);
    }
}
