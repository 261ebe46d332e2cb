//! The admin listener: /healthz, /status JSON, /metrics names and labels.

mod common;
use common::*;

#[test]
fn healthz_status_and_metrics() {
    let b = backends("adm", 2);
    let proxy = Proxy::start(&format!(
        "admin: {{ listen: \"{{ADMIN}}\" }}\nlisteners:\n  web:\n    listen: \"{{HTTP}}\"\n    routes: [{{ name: all, upstream: pool }}]\nupstreams:\n  pool:\n    backends:\n      - {{ addr: \"{}\", weight: 3 }}\n      - {{ addr: \"{}\" }}\n",
        b[0].addr, b[1].addr
    ));
    let h = get(proxy.admin, "a", "/healthz");
    assert_eq!((h.status, h.body.as_str()), (200, "ok\n"));

    for _ in 0..4 {
        assert_eq!(proxy.get("x", "/").status, 200);
    }
    // The proxy's logging phase (counts, in-flight release) runs just after
    // the client has its response: wait for the fourth to be counted.
    let counted = |s: &Response| {
        serde_json::from_str::<serde_json::Value>(&s.body)
            .is_ok_and(|j| j["listeners"]["web"]["requests"] == 4)
    };
    let mut status = get(proxy.admin, "a", "/status");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !counted(&status) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
        status = get(proxy.admin, "a", "/status");
    }
    assert_eq!(status.status, 200);
    assert_eq!(status.header("content-type"), Some("application/json"));
    let json: serde_json::Value = serde_json::from_str(&status.body).unwrap();
    let pool = &json["upstreams"]["pool"];
    assert_eq!(pool["policy"], "round_robin");
    assert_eq!(pool["backends"][0]["addr"], b[0].addr.to_string());
    assert_eq!(pool["backends"][0]["weight"], 3);
    assert_eq!(pool["backends"][0]["up"], true);
    assert_eq!(pool["backends"][0]["inflight"], 0);
    assert_eq!(pool["backends"][0]["circuit"], "closed");
    // Beyond the SPEC's fields: the process, listeners with routes, counts.
    assert!(json["pid"].as_u64().is_some_and(|p| p > 0));
    assert_eq!(json["version"], env!("CARGO_PKG_VERSION"));
    let web = &json["listeners"]["web"];
    assert_eq!(web["listen"], proxy.http.to_string());
    assert_eq!(web["protocol"], "http");
    assert_eq!(web["requests"], 4);
    assert_eq!(web["routes"][0]["name"], "all");
    assert_eq!(web["routes"][0]["host"], serde_json::Value::Null);
    assert_eq!(web["routes"][0]["upstream"], "pool");
    assert_eq!(web["routes"][0]["requests"], 4);
    assert_eq!(web["routes"][0]["responses"]["2xx"], 4);
    assert_eq!(pool["backends"][0]["requests"], 2);
    assert_eq!(pool["backends"][1]["requests"], 2);
    let page = get(proxy.admin, "a", "/");
    assert_eq!(page.status, 200);
    assert!(page.body.starts_with("<!doctype html>"));

    let m = proxy.metrics();
    for name in [
        "switchyard_http_requests_total",
        "switchyard_http_request_duration_seconds_bucket",
        "switchyard_backend_requests_total",
        "switchyard_backend_inflight",
        "switchyard_backend_up",
    ] {
        assert!(m.contains(name), "{name} missing from:\n{m}");
    }
    let per_backend = |i: usize| {
        metric_value(
            &m,
            "switchyard_backend_requests_total",
            &[("upstream", "pool"), ("backend", &b[i].addr.to_string())],
        )
    };
    assert_eq!(per_backend(0), Some(2.0));
    assert_eq!(per_backend(1), Some(2.0));
    assert_eq!(get(proxy.admin, "a", "/nope").status, 404);
}

#[test]
fn inflight_is_counted_while_a_request_is_open_and_released_after() {
    let b = backends("slow", 1);
    let proxy = Proxy::start(&format!(
        "admin: {{ listen: \"{{ADMIN}}\" }}\nlisteners:\n  web:\n    listen: \"{{HTTP}}\"\n    routes: [{{ upstream: pool }}]\nupstreams:\n  pool: {{ backends: {} }}\n",
        backend_list(&b)
    ));
    let http = proxy.http;
    let slow = std::thread::spawn(move || get(http, "x", "/?sleep_ms=1500").status);
    let labels = [("upstream", "pool"), ("backend", &*b[0].addr.to_string())];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut seen = 0.0;
    while std::time::Instant::now() < deadline && seen < 1.0 {
        seen = proxy
            .metric("switchyard_backend_inflight", &labels)
            .unwrap_or(0.0);
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(seen, 1.0);
    assert_eq!(slow.join().unwrap(), 200);
    // Released in the logging phase, just after the client has its response.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::time::Instant::now() < deadline && seen > 0.0 {
        std::thread::sleep(std::time::Duration::from_millis(20));
        seen = proxy
            .metric("switchyard_backend_inflight", &labels)
            .unwrap_or(-1.0);
    }
    assert_eq!(seen, 0.0);
}
