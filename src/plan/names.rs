//! Approvers' names, as every kind of approval keeps them.

/// An approver's name as recover keeps it: trimmed and case-folded, from a safe character set
/// (letters, digits, `.`, `_`, `@`, `-`; 1 to 64 of them, starting with a letter or digit), so
/// that `Alice` and `alice` are one person and no name carries terminal control codes.
pub fn approver_name(raw: &str) -> Result<String, String> {
    let n = raw.trim().to_lowercase();
    let ok = !n.is_empty()
        && n.len() <= 64
        && n.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && n.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-'));
    if ok {
        Ok(n)
    } else {
        Err(format!("{:?} is not an approver name: use 1 to 64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit", crate::report::clean_line(raw)))
    }
}
