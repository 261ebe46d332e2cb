//! Route choice through the real binary: host precedence, longest
//! segment-aware prefix, strip_prefix, absolute-form targets, dot-segments,
//! and round robin over an upstream.

mod common;
use common::*;

fn setup() -> (Proxy, Vec<Vec<DemoServer>>) {
    let exact = backends("exact", 1);
    let exact_v2 = backends("exact-v2", 1);
    let wild = backends("wild", 1);
    let any = backends("any", 1);
    let any_api = backends("any-api", 1);
    let config = format!(
        r#"
admin: {{ listen: "{{ADMIN}}" }}
listeners:
  web:
    listen: "{{HTTP}}"
    routes:
      - {{ name: any-root, upstream: any }}
      - {{ name: any-api, path_prefix: /api, strip_prefix: true, upstream: any_api }}
      - {{ name: exact, host: App.Example.com, upstream: exact }}
      - {{ name: exact-v2, host: app.example.com, path_prefix: /v2/, upstream: exact_v2 }}
      - {{ name: wild, host: "*.example.com", upstream: wild }}
upstreams:
  exact: {{ backends: {} }}
  exact_v2: {{ backends: {} }}
  wild: {{ backends: {} }}
  any: {{ backends: {} }}
  any_api: {{ backends: {} }}
"#,
        backend_list(&exact),
        backend_list(&exact_v2),
        backend_list(&wild),
        backend_list(&any),
        backend_list(&any_api),
    );
    (
        Proxy::start(&config),
        vec![exact, exact_v2, wild, any, any_api],
    )
}

#[test]
fn host_precedence_and_longest_prefix() {
    let (proxy, _b) = setup();
    let who = |host: &str, path: &str| proxy.get(host, path).backend().map(str::to_owned);
    // Exact host beats wildcard beats any; case and port are ignored.
    assert_eq!(who("app.example.com", "/x").as_deref(), Some("exact-1"));
    assert_eq!(
        who("APP.EXAMPLE.COM:8080", "/x").as_deref(),
        Some("exact-1")
    );
    assert_eq!(who("www.example.com", "/x").as_deref(), Some("wild-1"));
    assert_eq!(who("deep.sub.example.com", "/x").as_deref(), Some("wild-1"));
    assert_eq!(who("example.com", "/x").as_deref(), Some("any-1"));
    assert_eq!(who("elsewhere.org", "/x").as_deref(), Some("any-1"));
    // Longest prefix within the host, segment-aware.
    assert_eq!(who("app.example.com", "/v2").as_deref(), Some("exact-v2-1"));
    assert_eq!(
        who("app.example.com", "/v2/users").as_deref(),
        Some("exact-v2-1")
    );
    assert_eq!(who("app.example.com", "/v20").as_deref(), Some("exact-1"));
    assert_eq!(who("elsewhere.org", "/api/x").as_deref(), Some("any-api-1"));
    assert_eq!(who("elsewhere.org", "/apix").as_deref(), Some("any-1"));
}

#[test]
fn strip_prefix_rewrites_the_path_and_keeps_the_query() {
    let (proxy, _b) = setup();
    let r = proxy.get("elsewhere.org", "/api/users?id=7");
    assert_eq!(r.backend(), Some("any-api-1"));
    assert_eq!(r.target(), Some("/users?id=7"));
    let r = proxy.get("elsewhere.org", "/api");
    assert_eq!(r.target(), Some("/"));
    // Without strip_prefix the path is untouched.
    let r = proxy.get("app.example.com", "/v2/users");
    assert_eq!(r.target(), Some("/v2/users"));
}

#[test]
fn absolute_form_routes_by_its_authority() {
    let (proxy, _b) = setup();
    // Without Host (HTTP/1.0 style) and with a Host equal to the authority.
    for host in ["", "Host: app.example.com\r\n"] {
        let raw = format!(
            "GET http://app.example.com/v2/x/../y?q=1 HTTP/1.1\r\n{host}Connection: close\r\n\r\n"
        );
        let r = send(proxy.http, raw.as_bytes());
        assert_eq!(r.status, 200, "{host:?}");
        assert_eq!(r.backend(), Some("exact-v2-1"));
        assert_eq!(r.seen_header("host"), Some("app.example.com"));
        // Sent on in origin-form, dot-segments removed.
        assert_eq!(r.target(), Some("/v2/y?q=1"));
    }
    // A Host that disagrees with the target's authority is ambiguous: 400.
    let r = send(
        proxy.http,
        b"GET http://app.example.com/v2/x HTTP/1.1\r\nHost: elsewhere.org\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 400);
}

#[test]
fn dot_segments_are_removed_before_routing() {
    let (proxy, _b) = setup();
    // /v2/../api/secret must not be served by the /v2 route.
    let r = proxy.get("elsewhere.org", "/v2/../api/x");
    assert_eq!(r.backend(), Some("any-api-1"));
    assert_eq!(r.target(), Some("/x"));
    let r = proxy.get("app.example.com", "/a/./b/../c?q=%2e%2e");
    assert_eq!(r.target(), Some("/a/c?q=%2e%2e"));
}

#[test]
fn round_robin_takes_turns() {
    let servers = backends("rr", 3);
    let proxy = Proxy::start(&format!(
        "admin: {{ listen: \"{{ADMIN}}\" }}\nlisteners:\n  web:\n    listen: \"{{HTTP}}\"\n    routes: [{{ upstream: u }}]\nupstreams:\n  u: {{ backends: {} }}\n",
        backend_list(&servers)
    ));
    let seq: Vec<String> = (0..9)
        .map(|_| proxy.get("x", "/").backend().unwrap().to_owned())
        .collect();
    // Each backend exactly three times, in a repeating order.
    for s in &servers {
        assert_eq!(seq.iter().filter(|b| **b == s.name).count(), 3, "{seq:?}");
    }
    assert_eq!(seq[0..3], seq[3..6]);
    assert_eq!(seq[3..6], seq[6..9]);
}
