//! `redirect`: the route answers with a redirect itself, no backend
//! contacted. `Location` is the request's URL with the configured parts
//! replaced: a port given neither in the rule nor kept from the request is
//! the scheme's default, and a default port is left out.

/// A route's redirect rule, as validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    /// `http` or `https`; `None` keeps the request's.
    pub scheme: Option<&'static str>,
    pub host: Option<String>,
    pub port: Option<u16>,
    /// Replaces the path (the query is kept unless `strip_query`).
    pub path: Option<String>,
    pub strip_query: bool,
    /// 301, 302, 303, 307 or 308.
    pub status: u16,
}

/// The statuses a redirect may answer with.
pub const STATUSES: [u16; 5] = [301, 302, 303, 307, 308];

impl Redirect {
    /// `Location` for a request that came over `scheme` for `authority`
    /// (its Host, port included, as sent; empty if it had none) with
    /// `path_and_query`.
    pub fn location(&self, scheme: &str, authority: &str, path_and_query: &str) -> String {
        let (req_host, req_port) = split_authority(authority);
        let new_scheme = self.scheme.unwrap_or(scheme);
        let host = self.host.as_deref().unwrap_or(req_host);
        let port = match self.port {
            Some(p) => Some(p),
            None if new_scheme == scheme => req_port,
            None => None,
        };
        let (path, query) = match path_and_query.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path_and_query, None),
        };
        let path = self.path.as_deref().unwrap_or(path);
        let mut out = String::with_capacity(host.len() + path_and_query.len() + 16);
        if !host.is_empty() {
            out.push_str(new_scheme);
            out.push_str("://");
            out.push_str(host);
            if let Some(port) = port.filter(|&p| p != default_port(new_scheme)) {
                out.push(':');
                out.push_str(&port.to_string());
            }
        }
        out.push_str(if path.is_empty() { "/" } else { path });
        if let Some(q) = query.filter(|_| !self.strip_query) {
            out.push('?');
            out.push_str(q);
        }
        out
    }
}

fn default_port(scheme: &str) -> u16 {
    if scheme == "https" {
        443
    } else {
        80
    }
}

/// `host[:port]` (IPv6 literals in brackets) into its host and port.
fn split_authority(authority: &str) -> (&str, Option<u16>) {
    let port_at = match authority.rfind(':') {
        Some(i) if !authority[i..].contains(']') => i,
        _ => return (authority, None),
    };
    match authority[port_at + 1..].parse() {
        Ok(port) => (&authority[..port_at], Some(port)),
        Err(_) => (&authority[..port_at], None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule() -> Redirect {
        Redirect {
            scheme: None,
            host: None,
            port: None,
            path: None,
            strip_query: false,
            status: 308,
        }
    }

    #[test]
    fn to_https_drops_the_old_port_and_keeps_path_and_query() {
        let r = Redirect {
            scheme: Some("https"),
            ..rule()
        };
        assert_eq!(
            r.location("http", "shop.example:8080", "/a/b?x=1"),
            "https://shop.example/a/b?x=1"
        );
        assert_eq!(r.location("http", "[::1]:80", "/"), "https://[::1]/");
    }

    #[test]
    fn parts_replace_and_default_ports_are_left_out() {
        let r = Redirect {
            host: Some("www.example.com".into()),
            path: Some("/new".into()),
            strip_query: true,
            ..rule()
        };
        assert_eq!(
            r.location("http", "example.com:8080", "/old?q=1"),
            "http://www.example.com:8080/new"
        );
        let r = Redirect {
            scheme: Some("https"),
            port: Some(8443),
            ..rule()
        };
        assert_eq!(r.location("http", "a", "/p"), "https://a:8443/p");
        let r = Redirect {
            port: Some(80),
            ..rule()
        };
        assert_eq!(r.location("http", "a:9000", "/p"), "http://a/p");
    }

    #[test]
    fn without_a_host_the_location_is_a_path() {
        assert_eq!(rule().location("http", "", "/p?q"), "/p?q");
    }
}
