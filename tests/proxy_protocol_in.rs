//! `listeners.*.proxy_protocol: true`: connections from an L4 balancer start
//! with a PROXY v1 or v2 header, and its source is the client address the
//! backend (X-Forwarded-For) and the access log see, on both HTTP engines,
//! the HTTP/2 front and TLS listeners. A connection without a valid header
//! is closed with nothing forwarded, a silent one after `header_timeout`.

mod common;
use common::*;

use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use switchyard::proxy_protocol::{header, ConnAddrs, Version};

fn addrs(client: &str) -> Option<ConnAddrs> {
    Some(ConnAddrs {
        client: client.parse().unwrap(),
        local: "192.0.2.80:80".parse().unwrap(),
    })
}

fn config(forwarder: bool, backends: &[DemoServer]) -> String {
    format!(
        "server: {{ access_log: \"{{DIR}}/access.log\", header_timeout: 1s }}\nlisteners:\n  web:\n    listen: \"{{HTTP}}\"\n    proxy_protocol: true\n    forwarder: {forwarder}\n    routes: [{{ upstream: pool }}]\nupstreams:\n  pool: {{ backends: {} }}\n",
        backend_list(backends)
    )
}

fn open(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

const GET: &[u8] = b"GET /pp HTTP/1.1\r\nHost: pp.test\r\n\r\n";

/// The access log's `client_ip`s, once `n` lines are there.
fn logged_ips(proxy: &Proxy, n: usize) -> Vec<String> {
    let path = proxy.dir.path().join("access.log");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let ips: Vec<String> = text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .map(|v| v["client_ip"].as_str().unwrap_or_default().to_string())
            .collect();
        if ips.len() >= n || Instant::now() > deadline {
            return ips;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_proxy_source_is_the_client_address_on_both_engines() {
    let b = backends("pp", 1);
    for forwarder in [true, false] {
        let proxy = Proxy::start(&config(forwarder, &b));
        // v2, header and request in one write.
        let mut s = open(proxy.http);
        let mut wire = header(Version::V2, addrs("203.0.113.7:5555"));
        wire.extend_from_slice(GET);
        s.write_all(&wire).unwrap();
        let mut r = BufReader::new(s);
        let resp = read_response(&mut r).expect("a response");
        assert_eq!(resp.status, 200, "forwarder {forwarder}: {}", proxy.log());
        assert_eq!(resp.seen_header("x-forwarded-for"), Some("203.0.113.7"));
        // The next request on the connection keeps that address.
        r.get_mut().write_all(GET).unwrap();
        let again = read_response(&mut r).expect("a second response");
        assert_eq!(again.seen_header("x-forwarded-for"), Some("203.0.113.7"));

        // v1, header and request apart; a client chain is kept before it.
        let mut s = open(proxy.http);
        s.write_all(&header(Version::V1, addrs("[2001:db8::9]:4000")))
            .unwrap();
        std::thread::sleep(Duration::from_millis(50));
        s.write_all(b"GET / HTTP/1.1\r\nHost: pp.test\r\nX-Forwarded-For: 10.1.1.1\r\nConnection: close\r\n\r\n")
            .unwrap();
        let resp = read_response(&mut BufReader::new(s)).expect("a response");
        assert_eq!(
            resp.seen_header("x-forwarded-for"),
            Some("10.1.1.1, 2001:db8::9"),
            "forwarder {forwarder}"
        );

        // v2 LOCAL (the balancer's own check) and v1 UNKNOWN: the socket peer.
        for local in [header(Version::V2, None), header(Version::V1, None)] {
            let mut s = open(proxy.http);
            s.write_all(&[&local[..], GET].concat()).unwrap();
            let resp = read_response(&mut BufReader::new(s)).expect("a response");
            assert_eq!(resp.seen_header("x-forwarded-for"), Some("127.0.0.1"));
        }

        let ips = logged_ips(&proxy, 5);
        assert_eq!(
            ips,
            [
                "203.0.113.7",
                "203.0.113.7",
                "2001:db8::9",
                "127.0.0.1",
                "127.0.0.1"
            ],
            "forwarder {forwarder}"
        );
    }
}

/// Nothing comes back and the connection ends: EOF or a reset.
fn closed_unanswered(s: &mut TcpStream) -> bool {
    let mut got = Vec::new();
    match s.read_to_end(&mut got) {
        Ok(_) => got.is_empty(),
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    }
}

#[test]
fn a_connection_without_a_valid_header_is_closed_with_nothing_forwarded() {
    let b = backends("pp-none", 1);
    let proxy = Proxy::start(&config(true, &b));
    for bad in [
        GET,
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\nGET / HTTP/1.1\r\n\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 70000 80\r\n",
        b"\r\n\r\n\0\r\nQUIT\n\x13\x11\0\x0c",
    ] {
        let mut s = open(proxy.http);
        s.write_all(bad).unwrap();
        assert!(
            closed_unanswered(&mut s),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    // Silent, or a header that never ends: closed after header_timeout (1s).
    for slow in [&b""[..], b"PROXY TCP4 1.2.3.4 "] {
        let mut s = open(proxy.http);
        s.write_all(slow).unwrap();
        let started = Instant::now();
        assert!(closed_unanswered(&mut s));
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(500) && waited < Duration::from_secs(8),
            "{waited:?}"
        );
    }
    assert_eq!(b[0].hits(), 0, "nothing reached the backend");
}

/// The HTTP/2 front (h2c by prior knowledge) after a PROXY header: the
/// stream's request carries the PROXY source too.
#[test]
fn http2_streams_carry_the_proxy_source() {
    use common::h2frames::*;
    let b = backends("pp-h2", 1);
    let proxy = Proxy::start(&format!(
        "listeners:\n  web:\n    listen: \"{{HTTP}}\"\n    proxy_protocol: true\n    h2c: true\n    routes: [{{ upstream: pool }}]\nupstreams:\n  pool: {{ backends: {} }}\n",
        backend_list(&b)
    ));
    let mut s = open(proxy.http);
    s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(&header(Version::V1, addrs("198.51.100.33:1234")))
        .unwrap();
    s.write_all(PREFACE).unwrap();
    s.write_all(&settings(&[])).unwrap();
    let mut conn = Conn {
        s,
        ack_settings: true,
    };
    assert!(conn.send(&h2_get(1, "/h2", &[])));
    let mut body = Vec::new();
    loop {
        let f = conn
            .wait_for(|kind, stream| kind == DATA && stream == 1)
            .unwrap_or_else(|| panic!("no response body:\n{}", proxy.log()));
        body.extend_from_slice(&f.payload);
        if f.flags & END_STREAM != 0 {
            break;
        }
    }
    let body = String::from_utf8_lossy(&body);
    assert!(
        body.contains("header x-forwarded-for: 198.51.100.33"),
        "{body}"
    );
}

/// On a TLS listener the header comes before the handshake (curl's
/// `--haproxy-protocol` sends a v1 header with its real addresses).
#[test]
fn tls_listeners_read_the_header_before_the_handshake() {
    use std::process::Command;
    let dir = tempfile::tempdir().unwrap();
    let pem = certs::self_signed(dir.path(), "localhost", "localhost", &["localhost"]);
    let b = backends("pp-tls", 1);
    let proxy = Proxy::start(&format!(
        "listeners:\n  web:\n    listen: \"{{HTTP}}\"\n    proxy_protocol: true\n    tls: {{ cert: \"{}\", key: \"{}\" }}\n    routes: [{{ upstream: pool }}]\nupstreams:\n  pool: {{ backends: {} }}\n",
        pem.cert.display(),
        pem.key.display(),
        backend_list(&b)
    ));
    let port = proxy.http.port();
    let curl = |extra: &[&str]| {
        Command::new("curl")
            .args(["-s", "--max-time", "10", "--cacert"])
            .arg(&pem.cert)
            .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
            .args(extra)
            .arg(format!("https://localhost:{port}/tls"))
            .output()
            .expect("curl is installed by scripts/install-deps.sh")
    };
    let out = curl(&["--haproxy-protocol"]);
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{body}\n{}", proxy.log());
    assert!(body.contains("header x-forwarded-for: 127.0.0.1"), "{body}");
    assert!(body.contains("header x-forwarded-proto: https"), "{body}");
    // Without the header the handshake never starts.
    assert!(!curl(&[]).status.success());
    assert_eq!(b[0].hits(), 1);
}

/// `key: client_ip` rate limits and `hash_key: client_ip` count the PROXY
/// source, not the balancer's address all connections come from.
#[test]
fn rate_limits_and_client_ip_hashing_key_on_the_proxy_source() {
    let b = backends("pp-key", 4);
    for forwarder in [true, false] {
        let proxy = Proxy::start(&format!(
            "listeners:\n  web:\n    listen: \"{{HTTP}}\"\n    proxy_protocol: true\n    forwarder: {forwarder}\n    routes: [{{ upstream: pool, rate_limit: {{ rate: 1, per: 1h, burst: 2 }} }}]\nupstreams:\n  pool: {{ policy: consistent_hash, hash_key: client_ip, backends: {} }}\n",
            backend_list(&b)
        ));
        let ask = |client: &str| {
            let mut s = open(proxy.http);
            s.write_all(&[&header(Version::V2, addrs(client))[..], GET].concat())
                .unwrap();
            read_response(&mut BufReader::new(s)).expect("a response")
        };
        // Each source has its own bucket of 2 and keeps to one backend;
        // the sources spread over the backends (all would share one if the
        // balancer's address were hashed).
        let mut chosen = Vec::new();
        for n in 1..=10 {
            let client = &format!("203.0.113.{n}:{n}");
            let first = ask(client);
            assert_eq!(first.status, 200, "forwarder {forwarder}");
            let second = ask(client);
            assert_eq!(second.status, 200);
            assert_eq!(first.backend(), second.backend(), "{client}");
            assert_eq!(ask(client).status, 429, "forwarder {forwarder}: {client}");
            chosen.push(first.backend().unwrap_or_default().to_string());
        }
        // The same source from another port is the same client IP.
        assert_eq!(ask("203.0.113.1:9").status, 429);
        chosen.sort();
        chosen.dedup();
        assert!(chosen.len() >= 2, "forwarder {forwarder}: {chosen:?}");
    }
}
