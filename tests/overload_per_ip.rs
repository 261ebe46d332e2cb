//! `listeners.*.max_connections_per_ip` and the `switchyard_connections`
//! gauge through the real binary, on http and tcp listeners: connections
//! up to the cap stay open and usable, one more from the same IP is closed
//! at once without an answer and counted as refused, closing one frees its
//! slot. With `proxy_protocol` the cap counts the PROXY header's source.

mod common;
use common::*;

use std::io::{BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use switchyard::proxy_protocol::{header, ConnAddrs, Version};

/// A connection from 127.0.0.2: `Proxy::start`'s readiness probe (from
/// 127.0.0.1, accepted whenever the proxy gets to it) never holds one of
/// this IP's slots.
const GET: &[u8] = b"GET /cap HTTP/1.1\r\nHost: cap.test\r\n\r\n";

fn open(addr: SocketAddr) -> BufReader<TcpStream> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    let s = rt
        .block_on(async {
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.bind("127.0.0.2:0".parse().unwrap())?;
            socket.connect(addr).await?.into_std()
        })
        .unwrap();
    s.set_nonblocking(false).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    BufReader::new(s)
}

/// The proxy closes `conn` without a byte: EOF or reset, well before the
/// read timeout.
fn refused(mut conn: BufReader<TcpStream>) {
    let _ = conn.get_mut().write_all(GET);
    let mut buf = [0u8; 64];
    match conn.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => panic!("got {n} bytes: {:?}", String::from_utf8_lossy(&buf[..n])),
        Err(e) => assert!(
            matches!(
                e.kind(),
                ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe
            ),
            "not closed: {e}"
        ),
    }
}

/// Waits (bounded) until the metric reads `want`: it changes as the proxy's
/// connection tasks start and end, not in step with the client.
fn wait_metric(proxy: &Proxy, name: &str, labels: &[(&str, &str)], want: f64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = proxy.metric(name, labels);
        if got == Some(want) {
            return;
        }
        if Instant::now() > deadline {
            panic!("{name}{labels:?} = {got:?}, want {want}\n{}", proxy.log());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The cap's whole cycle on the listener `name` at `addr` (cap 2).
fn cap_of_two(proxy: &Proxy, name: &str, addr: SocketAddr) {
    let open_gauge = [("listener", name)];
    let refused_labels = [("listener", name), ("reason", "per_ip")];
    wait_metric(proxy, "switchyard_connections", &open_gauge, 0.0);
    wait_metric(
        proxy,
        "switchyard_connections_refused_total",
        &refused_labels,
        0.0,
    );

    let mut a = open(addr);
    let mut b = open(addr);
    common::served_keep_alive(&mut a);
    common::served_keep_alive(&mut b);
    wait_metric(proxy, "switchyard_connections", &open_gauge, 2.0);

    refused(open(addr));
    wait_metric(
        proxy,
        "switchyard_connections_refused_total",
        &refused_labels,
        1.0,
    );
    wait_metric(proxy, "switchyard_connections", &open_gauge, 2.0);
    // The two idle keep-alive connections were not touched.
    common::served_keep_alive(&mut a);
    common::served_keep_alive(&mut b);

    drop(a);
    wait_metric(proxy, "switchyard_connections", &open_gauge, 1.0);
    let mut c = open(addr);
    common::served_keep_alive(&mut c);
    wait_metric(proxy, "switchyard_connections", &open_gauge, 2.0);
    drop((b, c));
    wait_metric(proxy, "switchyard_connections", &open_gauge, 0.0);
    wait_metric(
        proxy,
        "switchyard_connections_refused_total",
        &refused_labels,
        1.0,
    );
}

#[test]
fn http_listener_caps_connections_per_ip() {
    let b = backends("cap", 1);
    let proxy = Proxy::start(&format!(
        "admin: {{ listen: \"{{ADMIN}}\" }}\nlisteners:\n  web:\n    listen: \"{{HTTP}}\"\n    max_connections_per_ip: 2\n    routes: [{{ upstream: pool }}]\nupstreams:\n  pool: {{ backends: {} }}\n",
        backend_list(&b)
    ));
    cap_of_two(&proxy, "web", proxy.http);
}

#[test]
fn tcp_listener_caps_connections_per_ip() {
    let b = backends("capt", 1);
    let proxy = Proxy::start(&format!(
        "admin: {{ listen: \"{{ADMIN}}\" }}\nlisteners:\n  db:\n    protocol: tcp\n    listen: \"{{TCP}}\"\n    max_connections_per_ip: 2\n    upstream: pool\nupstreams:\n  pool: {{ backends: {} }}\n",
        backend_list(&b)
    ));
    cap_of_two(&proxy, "db", proxy.tcp);
}

#[test]
fn without_a_cap_the_gauge_still_counts() {
    let b = backends("nocap", 1);
    let proxy = Proxy::start(&format!(
        "admin: {{ listen: \"{{ADMIN}}\" }}\nlisteners:\n  web:\n    listen: \"{{HTTP}}\"\n    routes: [{{ upstream: pool }}]\nupstreams:\n  pool: {{ backends: {} }}\n",
        backend_list(&b)
    ));
    let gauge = [("listener", "web")];
    wait_metric(&proxy, "switchyard_connections", &gauge, 0.0);
    let mut conns: Vec<_> = (0..3).map(|_| open(proxy.http)).collect();
    for c in &mut conns {
        common::served_keep_alive(c);
    }
    wait_metric(&proxy, "switchyard_connections", &gauge, 3.0);
    drop(conns);
    wait_metric(&proxy, "switchyard_connections", &gauge, 0.0);
    // No cap, no refusal series.
    assert_eq!(
        proxy.metric(
            "switchyard_connections_refused_total",
            &[("listener", "web"), ("reason", "per_ip")]
        ),
        None
    );
}

/// With `proxy_protocol`, two PROXY sources over connections from the same
/// socket peer (127.0.0.1) hold a slot each.
#[test]
fn proxy_protocol_source_is_the_counted_ip() {
    let b = backends("cappp", 1);
    let proxy = Proxy::start(&format!(
        "admin: {{ listen: \"{{ADMIN}}\" }}\nlisteners:\n  web:\n    listen: \"{{HTTP}}\"\n    proxy_protocol: true\n    max_connections_per_ip: 1\n    routes: [{{ upstream: pool }}]\nupstreams:\n  pool: {{ backends: {} }}\n",
        backend_list(&b)
    ));
    let gauge = [("listener", "web")];
    let refused_labels = [("listener", "web"), ("reason", "per_ip")];
    wait_metric(&proxy, "switchyard_connections", &gauge, 0.0);
    let from = |client: &str| {
        let mut c = open(proxy.http);
        let addrs = ConnAddrs {
            client: client.parse().unwrap(),
            local: "192.0.2.80:80".parse().unwrap(),
        };
        c.get_mut()
            .write_all(&header(Version::V2, Some(addrs)))
            .unwrap();
        c
    };
    let mut one = from("203.0.113.1:1000");
    let mut two = from("203.0.113.2:1000");
    common::served_keep_alive(&mut one);
    common::served_keep_alive(&mut two);
    refused(from("203.0.113.1:2000"));
    wait_metric(
        &proxy,
        "switchyard_connections_refused_total",
        &refused_labels,
        1.0,
    );
    common::served_keep_alive(&mut one);
    common::served_keep_alive(&mut two);
    wait_metric(&proxy, "switchyard_connections", &gauge, 2.0);
}
