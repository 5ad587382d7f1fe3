//! Splitting `Authorization: <scheme> <credentials>`.

/// Splits `<scheme> <rest>` and returns `rest` when the scheme matches (case-insensitive).
pub(crate) fn strip_scheme<'a>(value: &'a [u8], scheme: &str) -> Option<&'a [u8]> {
    let n = scheme.len();
    if value.len() <= n || !value[..n].eq_ignore_ascii_case(scheme.as_bytes()) {
        return None;
    }
    if value[n] != b' ' {
        return None;
    }
    let rest = &value[n..];
    let start = rest.iter().position(|b| *b != b' ')?;
    Some(&rest[start..])
}
