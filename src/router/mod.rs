//! Host + path → route.
//!
//! Precedence (SPEC "Route choice"): routes whose host is an exact match beat
//! wildcard routes, which beat any-host routes; within the best host class
//! that has a matching path, the longest `path_prefix` wins. A class with no
//! matching path falls through to the next (an exact-host route for `/api`
//! does not hide an any-host route for `/`). Among wildcards, the longer
//! suffix is more specific (`*.a.example.com` before `*.example.com`).
//!
//! Built once per listener at start; lookups allocate nothing.

mod host;
mod path;

pub use host::{absolute_form_authority, normalize_host, request_host};
pub use path::{normalize_path, prefix_matches, strip_prefix};

use std::collections::HashMap;

use crate::config::{HostMatch, Route};

/// A listener's routing table. `T` is whatever the proxy attaches to a route.
#[derive(Debug)]
pub struct Router<T> {
    routes: Vec<T>,
    /// host → candidate route indices, longest prefix first.
    exact: HashMap<String, Vec<(String, usize)>>,
    /// (suffix incl. leading dot, candidates), longest suffix first.
    wildcard: Vec<(String, Vec<(String, usize)>)>,
    any: Vec<(String, usize)>,
}

impl<T> Router<T> {
    /// `items` pairs each configured route with its runtime payload.
    pub fn new(items: Vec<(&Route, T)>) -> Self {
        let mut exact: HashMap<String, Vec<(String, usize)>> = HashMap::new();
        let mut wildcard: Vec<(String, Vec<(String, usize)>)> = Vec::new();
        let mut any = Vec::new();
        let mut routes = Vec::with_capacity(items.len());
        for (i, (route, payload)) in items.into_iter().enumerate() {
            let entry = (route.path_prefix.clone(), i);
            match &route.host {
                HostMatch::Exact(h) => exact.entry(h.clone()).or_default().push(entry),
                HostMatch::Wildcard(s) => match wildcard.iter_mut().find(|(w, _)| w == s) {
                    Some((_, v)) => v.push(entry),
                    None => wildcard.push((s.clone(), vec![entry])),
                },
                HostMatch::Any => any.push(entry),
            }
            routes.push(payload);
        }
        let by_len_desc =
            |v: &mut Vec<(String, usize)>| v.sort_by_key(|e| std::cmp::Reverse(e.0.len()));
        exact.values_mut().for_each(by_len_desc);
        wildcard.iter_mut().for_each(|(_, v)| by_len_desc(v));
        wildcard.sort_by_key(|e| std::cmp::Reverse(e.0.len()));
        by_len_desc(&mut any);
        Self {
            routes,
            exact,
            wildcard,
            any,
        }
    }

    /// The route for a lower-case `host` (no port) and a normalized `path`.
    pub fn find(&self, host: &str, path: &str) -> Option<&T> {
        let longest = |cands: &[(String, usize)]| {
            cands
                .iter()
                .find(|(prefix, _)| prefix_matches(prefix, path))
                .map(|(_, i)| *i)
        };
        let exact = || self.exact.get(host).and_then(|c| longest(c));
        let wild = || {
            self.wildcard
                .iter()
                .filter(|(suffix, _)| host.len() > suffix.len() && host.ends_with(suffix.as_str()))
                .find_map(|(_, c)| longest(c))
        };
        let any = || longest(&self.any);
        exact().or_else(wild).or_else(any).map(|i| &self.routes[i])
    }

    pub fn routes(&self) -> &[T] {
        &self.routes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(host: HostMatch, prefix: &str, name: &str) -> Route {
        Route {
            name: name.into(),
            host,
            path_prefix: prefix.into(),
            strip_prefix: false,
            upstream: Some("u".into()),
            rate_limit: None,
            sticky: None,
            redirect: None,
            request_headers: None,
            response_headers: None,
            max_body_bytes: None,
            allow: Vec::new(),
            deny: Vec::new(),
            max_inflight: None,
            timeout: None,
            compress: None,
        }
    }

    fn router() -> Router<&'static str> {
        let rs = [
            route(HostMatch::Any, "/", "any-root"),
            route(HostMatch::Any, "/api", "any-api"),
            route(
                HostMatch::Exact("api.example.com".into()),
                "/",
                "exact-root",
            ),
            route(
                HostMatch::Exact("api.example.com".into()),
                "/v2",
                "exact-v2",
            ),
            route(HostMatch::Wildcard(".example.com".into()), "/", "wild"),
            route(
                HostMatch::Wildcard(".eu.example.com".into()),
                "/",
                "wild-eu",
            ),
            route(
                HostMatch::Exact("only.example.com".into()),
                "/admin",
                "only-admin",
            ),
        ];
        let names = [
            "any-root",
            "any-api",
            "exact-root",
            "exact-v2",
            "wild",
            "wild-eu",
            "only-admin",
        ];
        Router::new(rs.iter().zip(names).collect())
    }

    #[test]
    fn exact_beats_wildcard_beats_any() {
        let r = router();
        assert_eq!(r.find("api.example.com", "/x"), Some(&"exact-root"));
        assert_eq!(r.find("www.example.com", "/x"), Some(&"wild"));
        assert_eq!(r.find("other.org", "/x"), Some(&"any-root"));
    }

    #[test]
    fn longest_prefix_within_a_host() {
        let r = router();
        assert_eq!(r.find("api.example.com", "/v2/users"), Some(&"exact-v2"));
        assert_eq!(r.find("api.example.com", "/v2"), Some(&"exact-v2"));
        assert_eq!(r.find("api.example.com", "/v20"), Some(&"exact-root"));
        assert_eq!(r.find("other.org", "/api/x"), Some(&"any-api"));
        assert_eq!(r.find("other.org", "/apix"), Some(&"any-root"));
    }

    #[test]
    fn wildcards_match_subdomains_only_and_prefer_longer_suffixes() {
        let r = router();
        assert_eq!(r.find("a.b.example.com", "/"), Some(&"wild"));
        assert_eq!(r.find("x.eu.example.com", "/"), Some(&"wild-eu"));
        assert_eq!(r.find("example.com", "/"), Some(&"any-root"));
        assert_eq!(r.find("badexample.com", "/"), Some(&"any-root"));
    }

    #[test]
    fn a_host_class_without_a_matching_path_falls_through() {
        let r = router();
        assert_eq!(r.find("only.example.com", "/admin/x"), Some(&"only-admin"));
        assert_eq!(r.find("only.example.com", "/other"), Some(&"wild"));
    }

    #[test]
    fn no_route_is_none() {
        let rs = [route(HostMatch::Exact("a.com".into()), "/", "a")];
        let r = Router::new(rs.iter().zip(["a"]).collect());
        assert_eq!(r.find("b.com", "/"), None);
    }
}
