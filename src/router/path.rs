//! Request paths: dot-segment removal (RFC 3986 §5.2.4), segment-aware prefix
//! matching and prefix stripping. Percent-encoding is left exactly as sent.

use std::borrow::Cow;

/// Removes `.` and `..` segments. `..` never climbs above the root.
/// Returns the input unchanged (borrowed) when there is nothing to remove.
pub fn normalize_path(path: &str) -> Cow<'_, str> {
    let has_dots = memchr::memchr(b'.', path.as_bytes()).is_some()
        && path.split('/').any(|seg| seg == "." || seg == "..");
    if !has_dots {
        return Cow::Borrowed(path);
    }
    let mut out: Vec<&str> = Vec::new();
    let segs: Vec<&str> = path.split('/').collect();
    let last = segs.len() - 1;
    for (i, seg) in segs.iter().enumerate() {
        match *seg {
            "." => {
                if i == last {
                    out.push("");
                }
            }
            ".." => {
                if out.len() > 1 {
                    out.pop();
                }
                if i == last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    let mut joined = out.join("/");
    if !joined.starts_with('/') {
        joined.insert(0, '/');
    }
    Cow::Owned(joined)
}

/// Segment-aware: `/api` matches `/api`, `/api/` and `/api/x`, not `/apix`.
/// `prefix` is normalized (no trailing `/` unless it is `/`).
pub fn prefix_matches(prefix: &str, path: &str) -> bool {
    if prefix == "/" {
        return true;
    }
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

/// `/api/x` with prefix `/api` → `/x`; `/api` → `/`. The query is kept.
pub fn strip_prefix(prefix: &str, path_and_query: &str) -> String {
    if prefix == "/" {
        return path_and_query.to_string();
    }
    let rest = path_and_query
        .strip_prefix(prefix)
        .unwrap_or(path_and_query);
    if rest.starts_with('/') {
        rest.to_string()
    } else {
        format!("/{rest}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_dot_segments() {
        assert_eq!(normalize_path("/a/../b"), "/b");
        assert_eq!(normalize_path("/a/./b/."), "/a/b/");
        assert_eq!(normalize_path("/../../etc/passwd"), "/etc/passwd");
        assert_eq!(normalize_path("/a/b/.."), "/a/");
        assert_eq!(normalize_path("/api/%2e%2e/x"), "/api/%2e%2e/x");
        assert!(matches!(normalize_path("/plain/path"), Cow::Borrowed(_)));
    }

    #[test]
    fn prefixes_respect_segments() {
        assert!(prefix_matches("/api", "/api"));
        assert!(prefix_matches("/api", "/api/"));
        assert!(prefix_matches("/api", "/api/x"));
        assert!(!prefix_matches("/api", "/apix"));
        assert!(!prefix_matches("/api", "/"));
        assert!(prefix_matches("/", "/anything"));
    }

    #[test]
    fn strips_prefix_keeping_query() {
        assert_eq!(strip_prefix("/api", "/api/x?y=1"), "/x?y=1");
        assert_eq!(strip_prefix("/api", "/api"), "/");
        assert_eq!(strip_prefix("/api", "/api?q"), "/?q");
        assert_eq!(strip_prefix("/", "/x"), "/x");
    }
}
