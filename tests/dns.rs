//! Backends from DNS, through the real binary and a DNS server the test
//! runs on loopback (`server.resolvers`): every A record of a host name is
//! a backend, SRV records give target:port and weight, the names are
//! resolved again every `resolve_every` (a record added gets traffic, a
//! record removed drains), and a resolver that goes away leaves the last
//! good answer serving.

mod common;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use common::dns::{Answer, DnsServer};
use common::{free_port, DemoServer, Proxy};

fn ip(s: &str) -> Answer {
    Answer::Ip(s.parse::<IpAddr>().unwrap())
}

/// Which backends answer `n` requests.
fn seen(proxy: &Proxy, n: usize) -> BTreeSet<String> {
    (0..n)
        .filter_map(|_| proxy.get("x", "/").backend().map(str::to_string))
        .collect()
}

/// Polls until `want` holds for the set of backends answering, or panics
/// with what was seen last.
fn until_seen(proxy: &Proxy, what: &str, want: impl Fn(&BTreeSet<String>) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = BTreeSet::new();
    while Instant::now() < deadline {
        last = seen(proxy, 12);
        if want(&last) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{what}: backends seen {last:?}\n{}", proxy.log());
}

fn config(dns: &DnsServer, upstream: &str) -> String {
    format!(
        r#"
server:
  resolvers: ["{}"]
admin: {{ listen: "{{ADMIN}}" }}
listeners:
  web:
    listen: "{{HTTP}}"
    routes: [{{ name: all, upstream: app }}]
upstreams:
  app:
{upstream}
"#,
        dns.addr
    )
}

/// Demo backends on one port of several loopback addresses (127.0.0.2...):
/// what one host name with several A records looks like.
fn on_loopbacks(port: u16, ips: &[&str]) -> Vec<DemoServer> {
    ips.iter()
        .enumerate()
        .map(|(i, ip)| {
            DemoServer::start(&format!("web-{}", i + 1), &format!("{ip}:{port}")).unwrap()
        })
        .collect()
}

#[test]
fn every_a_record_is_a_backend_and_the_status_names_it() {
    let port = free_port();
    let _web = on_loopbacks(port, &["127.0.0.2", "127.0.0.3"]);
    let dns = DnsServer::start();
    dns.set("web.test", vec![ip("127.0.0.2"), ip("127.0.0.3")]);
    let proxy = Proxy::start(&config(
        &dns,
        &format!("    backends: [{{ addr: \"web.test:{port}\" }}]"),
    ));
    until_seen(&proxy, "both records", |s| s.len() == 2);
    let status = common::get(proxy.admin, "admin", "/status").body;
    assert!(
        status.contains(&format!("\"127.0.0.2:{port}\"")),
        "{status}"
    );
    assert!(status.contains(&format!("\"web.test:{port}\"")), "{status}");
}

#[test]
fn srv_records_give_targets_ports_and_weights() {
    let web = common::backends("srv", 2);
    let dns = DnsServer::start();
    dns.set(
        "_http._tcp.app.test",
        vec![
            Answer::Srv(10, 1, web[0].addr.port(), "a.app.test".into()),
            Answer::Srv(10, 3, web[1].addr.port(), "b.app.test".into()),
            // A backup (higher priority number): not used while the others answer.
            Answer::Srv(20, 1, 9, "backup.app.test".into()),
        ],
    );
    dns.set("a.app.test", vec![ip("127.0.0.1")]);
    dns.set("b.app.test", vec![ip("127.0.0.1")]);
    dns.set("backup.app.test", vec![ip("127.0.0.1")]);
    let proxy = Proxy::start(&config(
        &dns,
        "    policy: weighted_round_robin\n    discovery: { srv: _http._tcp.app.test }",
    ));
    let mut counts = std::collections::HashMap::new();
    for _ in 0..40 {
        let r = proxy.get("x", "/");
        assert_eq!(r.status, 200, "{}", proxy.log());
        *counts
            .entry(r.backend().unwrap_or("?").to_string())
            .or_insert(0) += 1;
    }
    assert_eq!(counts.get("srv-1"), Some(&10), "weights 1:3 -> {counts:?}");
    assert_eq!(counts.get("srv-2"), Some(&30), "weights 1:3 -> {counts:?}");
}

#[test]
fn records_are_resolved_again_added_and_removed() {
    let port = free_port();
    let _web = on_loopbacks(port, &["127.0.0.2", "127.0.0.3", "127.0.0.4"]);
    let dns = DnsServer::start();
    dns.set("web.test", vec![ip("127.0.0.2")]);
    let proxy = Proxy::start(&config(
        &dns,
        &format!("    resolve_every: 200ms\n    backends: [{{ addr: \"web.test:{port}\" }}]"),
    ));
    until_seen(&proxy, "the first record", |s| {
        s.len() == 1 && s.contains("web-1")
    });
    dns.set(
        "web.test",
        vec![ip("127.0.0.2"), ip("127.0.0.3"), ip("127.0.0.4")],
    );
    until_seen(&proxy, "records added", |s| s.len() == 3);
    dns.set("web.test", vec![ip("127.0.0.4")]);
    // Removed records drain: no new requests go to them.
    until_seen(&proxy, "records removed", |s| {
        s.len() == 1 && s.contains("web-3")
    });
}

#[test]
fn a_resolver_that_goes_away_leaves_the_last_answer_serving() {
    let port = free_port();
    let _web = on_loopbacks(port, &["127.0.0.2", "127.0.0.3"]);
    let mut dns = DnsServer::start();
    dns.set("web.test", vec![ip("127.0.0.2"), ip("127.0.0.3")]);
    let proxy = Proxy::start(&config(
        &dns,
        &format!("    resolve_every: 200ms\n    backends: [{{ addr: \"web.test:{port}\" }}]"),
    ));
    until_seen(&proxy, "both records", |s| s.len() == 2);
    dns.stop();
    let labels = [("upstream", "app")];
    let deadline = Instant::now() + Duration::from_secs(15);
    while proxy
        .metric("switchyard_dns_lookup_failures_total", &labels)
        .unwrap_or(0.0)
        < 1.0
    {
        assert!(
            Instant::now() < deadline,
            "no failed lookup counted\n{}",
            proxy.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(seen(&proxy, 12).len(), 2, "{}", proxy.log());
    assert!(
        proxy.log().contains("keeping the last good answer"),
        "{}",
        proxy.log()
    );
}

#[test]
fn a_name_without_records_at_start_serves_once_it_has_some() {
    let port = free_port();
    let _web = on_loopbacks(port, &["127.0.0.2"]);
    let dns = DnsServer::start();
    let proxy = Proxy::start(&config(
        &dns,
        &format!("    resolve_every: 200ms\n    backends: [{{ addr: \"web.test:{port}\" }}]"),
    ));
    let r = proxy.get("x", "/");
    assert!(
        r.status == 502 || r.status == 503,
        "no backend yet: {}",
        r.status
    );
    dns.set("web.test", vec![ip("127.0.0.2")]);
    until_seen(&proxy, "the record that appeared", |s| s.contains("web-1"));
}

/// `config` with the proxy's own addresses, written over its file.
fn rewrite(proxy: &Proxy, config: &str) {
    let text = config
        .replace("{HTTP}", &proxy.http.to_string())
        .replace("{ADMIN}", &proxy.admin.to_string());
    std::fs::write(proxy.dir.path().join("switchyard.yaml"), text).unwrap();
}

#[test]
fn a_reload_resolves_the_names_it_brings() {
    let port = free_port();
    let _web = on_loopbacks(port, &["127.0.0.2", "127.0.0.3"]);
    let literal = DemoServer::start("literal", "127.0.0.1:0").unwrap();
    let dns = DnsServer::start();
    dns.set("web.test", vec![ip("127.0.0.2"), ip("127.0.0.3")]);
    let proxy = Proxy::start(&config(
        &dns,
        &format!("    backends: [{{ addr: \"{}\" }}]", literal.addr),
    ));
    until_seen(&proxy, "the literal backend", |s| {
        s.len() == 1 && s.contains("literal")
    });
    rewrite(
        &proxy,
        &config(
            &dns,
            &format!("    backends: [{{ addr: \"web.test:{port}\" }}]"),
        ),
    );
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &proxy.pid().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    until_seen(&proxy, "the records after reload", |s| {
        s.len() == 2 && !s.contains("literal")
    });
}

#[test]
fn a_new_record_waits_for_its_health_checks() {
    let port = free_port();
    let _web = on_loopbacks(port, &["127.0.0.2", "127.0.0.3"]);
    let dns = DnsServer::start();
    dns.set("web.test", vec![ip("127.0.0.2")]);
    let proxy = Proxy::start(&config(
        &dns,
        &format!(
            "    resolve_every: 200ms\n    backends: [{{ addr: \"web.test:{port}\" }}]\n    \
             health_check: {{ type: http, path: /, interval: 1s, healthy_threshold: 3 }}"
        ),
    ));
    until_seen(&proxy, "the first record", |s| s.contains("web-1"));
    dns.set("web.test", vec![ip("127.0.0.2"), ip("127.0.0.3")]);
    // Listed (so resolved) but down until three checks a second apart pass.
    let addr = format!("\"127.0.0.3:{port}\"");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !common::get(proxy.admin, "admin", "/status")
        .body
        .contains(&addr)
    {
        assert!(Instant::now() < deadline, "never listed\n{}", proxy.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !seen(&proxy, 12).contains("web-2"),
        "a new record got traffic before its checks passed"
    );
    until_seen(&proxy, "the new record once healthy", |s| {
        s.contains("web-2")
    });
}

#[test]
fn check_validates_names_without_looking_them_up() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dns.yaml");
    std::fs::write(
        &file,
        "listeners: { web: { listen: \"127.0.0.1:8080\", routes: [{ upstream: app }] } }\n\
         upstreams:\n  app:\n    backends: [{ addr: \"nowhere.invalid:80\" }, { addr: \"bad name:80\" }]\n",
    )
    .unwrap();
    let (code, _out, err) = common::check(&file);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("upstreams.app.backends[1].addr"), "{err}");
    assert!(
        !err.contains("backends[0]"),
        "a valid name is not an error: {err}"
    );
}
