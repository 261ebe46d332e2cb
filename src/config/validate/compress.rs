//! A route's `compress`: the media types compressed and the smallest body.

use super::super::model::{Compress, MediaRange};
use super::super::path::YamlPath;
use super::super::problem::Problems;
use super::super::raw::RawCompress;

/// `types` when none are given.
pub const DEFAULT_TYPES: [&str; 4] = [
    "text/*",
    "application/json",
    "application/javascript",
    "image/svg+xml",
];
/// `min_bytes` when not given: below about 1 KiB a body barely shrinks
/// (a gzip header and trailer alone are 18 bytes).
pub const DEFAULT_MIN_BYTES: u64 = 1024;

pub(super) fn compress(c: RawCompress, path: &YamlPath, p: &mut Problems) -> Compress {
    let types = match c.types {
        None => DEFAULT_TYPES
            .iter()
            .filter_map(|t| media_range(t))
            .collect(),
        Some(list) => {
            if list.is_empty() {
                p.error(&path.key("types"), "no types: nothing would be compressed")
                    .hint("leave `types` out for the defaults, or remove `compress`");
            }
            list.iter()
                .enumerate()
                .filter_map(|(i, t)| {
                    let range = media_range(t);
                    if range.is_none() {
                        p.error(
                            &path.key("types").index(i),
                            format!("\"{t}\" is not a media type"),
                        )
                        .hint("write type/subtype or type/*, without parameters, e.g. text/html, text/*, application/json");
                    }
                    range
                })
                .collect()
        }
    };
    Compress {
        types,
        min_bytes: c.min_bytes.unwrap_or(DEFAULT_MIN_BYTES),
    }
}

/// `type/subtype` or `type/*`: both parts tokens (RFC 9110 §8.3.1), no
/// parameters, no spaces; `*/*` is refused (it would take images and
/// archives that are compressed already).
fn media_range(t: &str) -> Option<MediaRange> {
    let (kind, sub) = t.split_once('/')?;
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    if !token(kind) {
        return None;
    }
    let kind = kind.to_ascii_lowercase();
    if sub == "*" {
        Some(MediaRange::AnySubtype(kind))
    } else if token(sub) {
        Some(MediaRange::Exact(format!(
            "{kind}/{}",
            sub.to_ascii_lowercase()
        )))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_ranges() {
        assert_eq!(
            media_range("Text/HTML"),
            Some(MediaRange::Exact("text/html".into()))
        );
        assert_eq!(
            media_range("text/*"),
            Some(MediaRange::AnySubtype("text".into()))
        );
        assert_eq!(
            media_range("image/svg+xml"),
            Some(MediaRange::Exact("image/svg+xml".into()))
        );
        for bad in [
            "text",
            "*/*",
            "text/",
            "/html",
            "text/html; charset=utf-8",
            "text /html",
            "text/h tml",
            "text/html/x",
            "",
        ] {
            assert_eq!(media_range(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn defaults() {
        let mut p = Problems::default();
        let c = compress(RawCompress::default(), &YamlPath::root(), &mut p);
        assert!(p.list.is_empty());
        assert_eq!(c.min_bytes, 1024);
        assert_eq!(c.types.len(), 4);
        assert_eq!(c.types[0], MediaRange::AnySubtype("text".into()));
    }
}
