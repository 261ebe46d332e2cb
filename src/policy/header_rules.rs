//! `request_headers` / `response_headers`: `set` (replace every line of a
//! name, or add one), `add` (one more line), `remove`. Applied after
//! switchyard's own forwarding headers; `check` refuses the names switchyard
//! must own (`Host`, `Content-Length`, `Transfer-Encoding`, `Connection`), so
//! a rule cannot break routing or framing.

use http::{HeaderName, HeaderValue};
use pingora::http::{RequestHeader, ResponseHeader};

/// The names no rule may touch.
pub const OWNED: [&str; 4] = ["host", "content-length", "transfer-encoding", "connection"];

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderRules {
    pub set: Vec<(HeaderName, HeaderValue)>,
    pub add: Vec<(HeaderName, HeaderValue)>,
    pub remove: Vec<HeaderName>,
}

impl HeaderRules {
    /// A line of this name from the other side gives way: `set` replaces
    /// it, `remove` drops it.
    pub fn drops(&self, name: &[u8]) -> bool {
        let named = |n: &HeaderName| name.eq_ignore_ascii_case(n.as_str().as_bytes());
        self.remove.iter().any(named) || self.set.iter().any(|(n, _)| named(n))
    }

    /// The lines the rules add, `set` ones first.
    pub fn lines(&self) -> impl Iterator<Item = (&HeaderName, &HeaderValue)> {
        self.set.iter().chain(&self.add).map(|(n, v)| (n, v))
    }

    /// Applies the rules to a request or response head (Pingora's path).
    pub fn apply_to<H: EditHead>(&self, head: &mut H) -> pingora::Result<()> {
        for name in &self.remove {
            head.remove(name);
        }
        for (name, value) in &self.set {
            head.insert(name, value)?;
        }
        for (name, value) in &self.add {
            head.append(name, value)?;
        }
        Ok(())
    }
}

/// Pingora's request and response heads, as the rules edit them.
pub trait EditHead {
    fn remove(&mut self, name: &HeaderName);
    fn insert(&mut self, name: &HeaderName, value: &HeaderValue) -> pingora::Result<()>;
    fn append(&mut self, name: &HeaderName, value: &HeaderValue) -> pingora::Result<()>;
}

macro_rules! edit_head {
    ($head:ty) => {
        impl EditHead for $head {
            fn remove(&mut self, name: &HeaderName) {
                self.remove_header(name);
            }
            fn insert(&mut self, name: &HeaderName, value: &HeaderValue) -> pingora::Result<()> {
                self.insert_header(name.clone(), value.clone())
            }
            fn append(&mut self, name: &HeaderName, value: &HeaderValue) -> pingora::Result<()> {
                self.append_header(name.clone(), value.clone()).map(|_| ())
            }
        }
    };
}

edit_head!(RequestHeader);
edit_head!(ResponseHeader);

/// Rewrites header lines (`Name: value\r\n` each): the lines whose name
/// `drops` are removed, then `lines` appended.
pub fn rewrite_fields<'a>(
    fields: &mut Vec<u8>,
    drops: impl Fn(&[u8]) -> bool,
    lines: impl Iterator<Item = (&'a HeaderName, &'a HeaderValue)>,
) {
    let mut kept = Vec::with_capacity(fields.len() + 64);
    let mut rest = &fields[..];
    while !rest.is_empty() {
        let end = memchr::memchr(b'\n', rest).map_or(rest.len(), |i| i + 1);
        let (line, next) = rest.split_at(end);
        let name = &line[..memchr::memchr(b':', line).unwrap_or(line.len())];
        if !drops(name) {
            kept.extend_from_slice(line);
        }
        rest = next;
    }
    for (name, value) in lines {
        kept.extend_from_slice(name.as_str().as_bytes());
        kept.extend_from_slice(b": ");
        kept.extend_from_slice(value.as_bytes());
        kept.extend_from_slice(b"\r\n");
    }
    *fields = kept;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> HeaderRules {
        HeaderRules {
            set: vec![(
                HeaderName::from_static("x-env"),
                HeaderValue::from_static("prod"),
            )],
            add: vec![(
                HeaderName::from_static("x-tag"),
                HeaderValue::from_static("edge"),
            )],
            remove: vec![HeaderName::from_static("x-debug")],
        }
    }

    #[test]
    fn fields_get_set_add_and_remove() {
        let mut fields =
            b"Host: a\r\nX-Env: dev\r\nx-env: qa\r\nX-Debug: 1\r\nX-Tag: client\r\n".to_vec();
        let rules = rules();
        rewrite_fields(&mut fields, |name| rules.drops(name), rules.lines());
        assert_eq!(
            std::str::from_utf8(&fields).unwrap(),
            "Host: a\r\nX-Tag: client\r\nx-env: prod\r\nx-tag: edge\r\n"
        );
    }

    #[test]
    fn heads_get_the_same() {
        let mut req = RequestHeader::build("GET", b"/", None).unwrap();
        req.append_header("X-Env", "dev").unwrap();
        req.append_header("X-Env", "qa").unwrap();
        req.append_header("X-Debug", "1").unwrap();
        req.append_header("X-Tag", "client").unwrap();
        rules().apply_to(&mut req).unwrap();
        let all = |n: &str| -> Vec<&str> {
            req.headers
                .get_all(n)
                .iter()
                .map(|v| v.to_str().unwrap())
                .collect()
        };
        assert_eq!(all("x-env"), ["prod"]);
        assert_eq!(all("x-tag"), ["client", "edge"]);
        assert!(all("x-debug").is_empty());
        assert!(rules().drops(b"X-DEBUG") && rules().drops(b"x-env") && !rules().drops(b"x-tag"));
    }
}
