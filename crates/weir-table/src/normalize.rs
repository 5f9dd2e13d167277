//! Request path normalization, as Istio's default (`pathNormalization: BASE`) has Envoy
//! do it before routing: RFC 3986 normalization (percent-encoded unreserved characters
//! decoded, `.` and `..` segments removed) plus backslashes turned into slashes.
//! Slashes are not merged and `%2F` stays encoded. The normalized path is what routes
//! match and what goes upstream, so `/public/../admin` cannot slip past a route for
//! `/admin`.

/// The normalized form of `path` (no query), or `None` when it is already normal (the
/// common case, decided in one pass without allocating).
pub fn normalize_path(path: &str) -> Option<String> {
    if !needs_work(path.as_bytes()) {
        return None;
    }
    let decoded = decode(path.as_bytes());
    let out = remove_dot_segments(&decoded);
    (out != path).then_some(out)
}

/// True when the path has something normalization could change.
fn needs_work(p: &[u8]) -> bool {
    p.iter()
        .enumerate()
        .any(|(i, &b)| b == b'%' || b == b'\\' || escaped(b) || (b == b'.' && i > 0 && p[i - 1] == b'/'))
}

/// Bytes a canonical path carries percent-encoded (as Chromium's canonicalizer, which
/// Envoy uses, encodes them).
fn escaped(b: u8) -> bool {
    b >= 0x80 || matches!(b, b' ' | b'"' | b'<' | b'>' | b'`' | b'{' | b'}')
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Backslashes to slashes, `%XX` of unreserved characters decoded (other escapes kept
/// as written), bytes that must be escaped escaped.
fn decode(p: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(p.len() + 8);
    let mut i = 0;
    while i < p.len() {
        let b = p[i];
        if b == b'%'
            && let (Some(h), Some(l)) = (p.get(i + 1).and_then(|&c| hex(c)), p.get(i + 2).and_then(|&c| hex(c)))
            && unreserved(h << 4 | l)
        {
            out.push(char::from(h << 4 | l));
            i += 3;
            continue;
        }
        match b {
            b'\\' => out.push('/'),
            b if escaped(b) => {
                out.push('%');
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 15)]));
            }
            b => out.push(char::from(b)),
        }
        i += 1;
    }
    out
}

/// RFC 3986 §5.2.4 on an absolute path: `.` segments dropped, `..` drops the segment
/// before it (never above the root); a trailing `.` or `..` leaves a trailing slash.
fn remove_dot_segments(path: &str) -> String {
    let Some(rest) = path.strip_prefix('/') else { return path.to_string() };
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = rest.split('/').collect();
    let last = segments.len() - 1;
    for (i, seg) in segments.iter().enumerate() {
        match *seg {
            "." => {
                if i == last {
                    out.push("");
                }
            }
            ".." => {
                out.pop();
                if i == last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    format!("/{}", out.join("/"))
}

#[cfg(test)]
mod tests {
    use super::normalize_path;

    fn n(p: &str) -> String {
        normalize_path(p).unwrap_or_else(|| p.to_string())
    }

    #[test]
    fn normal_paths_are_left_alone_without_work() {
        for p in ["/", "/a/b", "/a//b", "/a/b/", "/a.b/c..d/.e", "/%2F", "/a%2fb", "/~user/x-y_z"] {
            assert_eq!(normalize_path(p), None, "{p}");
        }
    }

    #[test]
    fn dot_segments_are_removed() {
        assert_eq!(n("/a/../b"), "/b");
        assert_eq!(n("/x/../tob"), "/tob");
        assert_eq!(n("/a/./b"), "/a/b");
        assert_eq!(n("/./exact"), "/exact");
        assert_eq!(n("/a/b/."), "/a/b/");
        assert_eq!(n("/a/b/.."), "/a/");
        assert_eq!(n("/../../a"), "/a");
        assert_eq!(n("/a//../b"), "/a/b");
        assert_eq!(n("/.."), "/");
    }

    #[test]
    fn unreserved_escapes_are_decoded_before_dot_segments() {
        assert_eq!(n("/ex%61ct"), "/exact");
        assert_eq!(n("/%7Euser"), "/~user");
        assert_eq!(n("/a/%2e%2E/b"), "/b");
        assert_eq!(n("/a/.%2e/b"), "/b");
        // Reserved characters stay encoded, as written.
        assert_eq!(n("/a%2fb/%3a/./c"), "/a%2fb/%3a/c");
        assert_eq!(n("/bad%zz/./x"), "/bad%zz/x");
        assert_eq!(n("/trail%"), "/trail%");
    }

    #[test]
    fn backslashes_become_slashes_and_unsafe_bytes_are_escaped() {
        assert_eq!(n("/a\\..\\b"), "/b");
        assert_eq!(n("/caf\u{e9}"), "/caf%C3%A9");
        assert_eq!(n("/a b"), "/a%20b");
    }
}
