//! The path a forward-auth request is judged by: decoded once, dot segments and repeated
//! slashes resolved, path parameters dropped, the way an origin routes it; anything
//! that would route differently on different servers is refused instead.

/// Why a path cannot be judged (answered 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unjudgeable(pub &'static str);

/// The normalized path of `raw` (a request target: path and maybe query), and its query.
///
/// - percent-decoding once; an encoded `/` or `\` (`%2F`, `%5C`), a `\`, a `%` left
///   after decoding (double encoding), a control character, a bad escape or bytes that
///   are not UTF-8 are refused;
/// - `.` and `..` segments resolved (never above the root), empty segments (`//`)
///   dropped, `;parameters` of a segment dropped;
/// - the query kept as sent (not judged).
pub(crate) fn normalize(raw: &str) -> Result<(String, Option<String>), Unjudgeable> {
    let raw = raw.split('#').next().unwrap_or_default();
    let (path, query) = match raw.split_once('?') {
        Some((p, q)) => (p, Some(q.to_owned())),
        None => (raw, None),
    };
    if !path.starts_with('/') {
        return Err(Unjudgeable("forward-auth: the URI is not an absolute path"));
    }
    if is_plain(path) {
        return Ok((path.to_owned(), query));
    }
    resolve(path).map(|p| (p, query))
}

/// Whether `path` (starting with `/`) is already what [`resolve`] makes of it: only
/// unreserved and sub-delimiter characters besides `/` (no `%`, `;`, `\`, controls or
/// non-ASCII), no empty segment (`//`), no `.` or `..` segment.
fn is_plain(path: &str) -> bool {
    if path == "/" {
        return true;
    }
    let body = &path[1..];
    let body = body.strip_suffix('/').unwrap_or(body);
    let plain_byte = |b: &u8| {
        b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'/' | b'-'
                    | b'.'
                    | b'_'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b'='
                    | b':'
                    | b'@'
            )
    };
    !body.is_empty()
        && body.as_bytes().iter().all(plain_byte)
        && body.split('/').all(|seg| !matches!(seg, "" | "." | ".."))
}

/// The path decoded and resolved (see [`normalize`]).
fn resolve(path: &str) -> Result<String, Unjudgeable> {
    let lower = path.to_ascii_lowercase();
    if lower.contains("%2f") || lower.contains("%5c") || path.contains('\\') {
        return Err(Unjudgeable("forward-auth: an encoded slash or a backslash"));
    }
    let decoded = percent_decode_strict(path)?;
    if decoded.contains('%') {
        return Err(Unjudgeable("forward-auth: double percent-encoding"));
    }
    if decoded.chars().any(char::is_control) {
        return Err(Unjudgeable("forward-auth: a control character in the path"));
    }
    let mut segments: Vec<&str> = Vec::new();
    for segment in decoded.split('/') {
        let segment = segment.split(';').next().unwrap_or_default();
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(decoded.len());
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    let trailing = decoded.ends_with('/') && !segments.is_empty();
    if out.is_empty() || trailing {
        out.push('/');
    }
    Ok(out)
}

/// Percent-decoding that refuses malformed escapes and non-UTF-8 results.
fn percent_decode_strict(s: &str) -> Result<String, Unjudgeable> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = |b: u8| (b as char).to_digit(16);
            match (
                bytes.get(i + 1).and_then(|b| hex(*b)),
                bytes.get(i + 2).and_then(|b| hex(*b)),
            ) {
                (Some(h), Some(l)) => out.push((h * 16 + l) as u8),
                _ => return Err(Unjudgeable("forward-auth: a malformed percent escape")),
            }
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| Unjudgeable("forward-auth: the path is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plain-path shortcut answers exactly what the full resolution does, for every
    /// path of up to four characters over an alphabet of the characters that matter.
    #[test]
    fn the_plain_shortcut_agrees_with_the_full_resolution() {
        let alphabet = ['a', '/', '.', '%', ';', '2', 'f', '~', ',', '\\', 'é'];
        let mut paths = vec!["/".to_owned()];
        let mut frontier = vec!["/".to_owned()];
        for _ in 0..4 {
            let mut next = Vec::new();
            for p in &frontier {
                for c in alphabet {
                    next.push(format!("{p}{c}"));
                }
            }
            paths.extend(next.iter().cloned());
            frontier = next;
        }
        let mut plain = 0;
        for p in &paths {
            if is_plain(p) {
                plain += 1;
                assert_eq!(resolve(p).as_deref(), Ok(p.as_str()), "{p}");
            }
        }
        assert!(plain > 100, "the shortcut took {plain} paths");
    }

    #[test]
    fn paths_resolve_as_an_origin_routes_them() {
        let ok = |raw: &str| normalize(raw).map(|(p, _)| p);
        for (raw, want) in [
            ("/admin", "/admin"),
            ("/%61dmin", "/admin"),
            ("//admin", "/admin"),
            ("/./admin", "/admin"),
            ("/x/../admin", "/admin"),
            ("/../../admin", "/admin"),
            ("/admin;jsessionid=1", "/admin"),
            ("/admin/;x/users", "/admin/users"),
            ("/public/../admin/", "/admin/"),
            ("/", "/"),
            ("/a?b=c/../d", "/a"),
            ("/caf%C3%A9", "/café"),
        ] {
            assert_eq!(ok(raw).as_deref(), Ok(want), "{raw}");
        }
        assert_eq!(normalize("/a?x=1").unwrap().1.as_deref(), Some("x=1"));
        let slash = "forward-auth: an encoded slash or a backslash";
        let escape = "forward-auth: a malformed percent escape";
        let control = "forward-auth: a control character in the path";
        let relative = "forward-auth: the URI is not an absolute path";
        for (raw, why) in [
            ("/admin%2Fusers", slash),
            ("/admin%2fusers", slash),
            ("/admin%5Cusers", slash),
            ("/admin\\users", slash),
            ("/%2561dmin", "forward-auth: double percent-encoding"),
            ("/a%zz", escape),
            ("/a%4", escape),
            ("/%ff", "forward-auth: the path is not UTF-8"),
            ("/a%00b", control),
            ("/a%0Ab", control),
            ("admin", relative),
            ("", relative),
            ("http://evil/admin", relative),
        ] {
            assert_eq!(normalize(raw), Err(Unjudgeable(why)), "{raw:?}");
        }
    }
}
