//! `upstreams.*.send_proxy_protocol: v1 | v2`: each new backend connection
//! starts with a PROXY header naming the client, on both HTTP engines and on
//! TCP listeners; a connection that carries one client's header never
//! serves another client address; health checks arrive plain.

mod common;
use common::*;

use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use switchyard::proxy_protocol::{header, parse, ConnAddrs, Header, Parsed, Version};

/// What one backend connection brought: its PROXY header (if any) and, per
/// request, the path and the last X-Forwarded-For entry.
#[derive(Debug, Clone, Default)]
struct Seen {
    header: Option<Header>,
    requests: Vec<(String, String)>,
}

/// An HTTP/1.1 backend that takes an optional PROXY header first and
/// answers every request with 200 and the number of its connection.
struct Backend {
    addr: SocketAddr,
    conns: Arc<Mutex<Vec<Seen>>>,
}

impl Backend {
    fn start() -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let conns = Arc::new(Mutex::new(Vec::new()));
        let shared = Arc::clone(&conns);
        std::thread::spawn(move || {
            for s in listener.incoming().flatten() {
                let id = {
                    let mut c = shared.lock().unwrap();
                    c.push(Seen::default());
                    c.len() - 1
                };
                let shared = Arc::clone(&shared);
                std::thread::spawn(move || serve(s, id, &shared));
            }
        });
        Backend { addr, conns }
    }

    fn seen(&self) -> Vec<Seen> {
        self.conns.lock().unwrap().clone()
    }
}

/// Reads a PROXY header if the connection starts with one; the bytes after.
fn read_proxy(s: &mut TcpStream) -> Option<(Option<Header>, Vec<u8>)> {
    let mut buf = Vec::new();
    loop {
        match parse(&buf) {
            Ok(Parsed::Complete { header, len }) => {
                return Some((Some(header), buf.split_off(len)))
            }
            Err(_) => return Some((None, buf)),
            Ok(Parsed::Incomplete) => {
                let mut chunk = [0u8; 512];
                let n = s.read(&mut chunk).ok().filter(|n| *n > 0)?;
                buf.extend_from_slice(&chunk[..n]);
            }
        }
    }
}

fn serve(mut s: TcpStream, id: usize, conns: &Mutex<Vec<Seen>>) {
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let Some((header, mut buf)) = read_proxy(&mut s) else {
        return;
    };
    conns.lock().unwrap()[id].header = header;
    loop {
        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            buf.drain(..end + 4);
            let path = head.split(' ').nth(1).unwrap_or_default().to_string();
            let xff = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("x-forwarded-for:")
                        .map(str::to_string)
                })
                .and_then(|v| v.rsplit(',').next().map(|x| x.trim().to_string()))
                .unwrap_or_default();
            conns.lock().unwrap()[id].requests.push((path, xff));
            let body = format!("conn {id}");
            let resp = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            if s.write_all(resp.as_bytes()).is_err() {
                return;
            }
        }
        let mut chunk = [0u8; 4096];
        match s.read(&mut chunk) {
            Ok(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => return,
        }
    }
}

/// A client connection from `source` (127.0.0.1 or 127.0.0.2).
fn connect_from(source: &str, to: SocketAddr) -> TcpStream {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let s = rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
        socket.connect(to).await.unwrap()
    });
    let s = s.into_std().unwrap();
    s.set_nonblocking(false).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Two keep-alive requests from `source`; the responses' bodies.
fn two_requests(proxy: &Proxy, source: &str) -> Vec<String> {
    let s = connect_from(source, proxy.http);
    let mut r = BufReader::new(s);
    (0..2)
        .map(|_| {
            r.get_mut()
                .write_all(b"GET /app HTTP/1.1\r\nHost: pp.test\r\n\r\n")
                .unwrap();
            let resp = read_response(&mut r).expect("a response");
            assert_eq!(resp.status, 200, "{}", proxy.log());
            resp.body
        })
        .collect()
}

#[test]
fn backends_get_the_client_in_a_proxy_header_and_never_share_a_connection() {
    for forwarder in [true, false] {
        for version in ["v1", "v2"] {
            let backend = Backend::start();
            let proxy = Proxy::start(&format!(
                "listeners:\n  web:\n    listen: \"{{HTTP}}\"\n    forwarder: {forwarder}\n    routes: [{{ upstream: pool }}]\nupstreams:\n  pool:\n    send_proxy_protocol: {version}\n    backends: [{{ addr: \"{}\" }}]\n    health_check: {{ type: http, path: /healthz, interval: 100ms, healthy_threshold: 1 }}\n",
                backend.addr
            ));
            let case = format!("forwarder {forwarder}, {version}");
            let healthz = |seen: &[Seen]| {
                seen.iter()
                    .any(|c| c.requests.iter().any(|(p, _)| p == "/healthz"))
            };
            assert!(wait_until(Duration::from_secs(10), || healthz(
                &backend.seen()
            )));
            for source in ["127.0.0.1", "127.0.0.2", "127.0.0.1", "127.0.0.2"] {
                two_requests(&proxy, source);
            }
            let seen = backend.seen();
            let mut sources = Vec::new();
            let mut reused = false;
            for conn in &seen {
                let app: Vec<&String> = conn
                    .requests
                    .iter()
                    .filter(|(p, _)| p == "/app")
                    .map(|(_, xff)| xff)
                    .collect();
                if conn.requests.iter().any(|(p, _)| p == "/healthz") {
                    assert!(conn.header.is_none(), "{case}: health check with {conn:?}");
                    assert!(app.is_empty(), "{case}: {conn:?}");
                    continue;
                }
                let Some(Header::Proxied { source, dest }) = conn.header else {
                    assert!(conn.requests.is_empty(), "{case}: no header on {conn:?}");
                    continue;
                };
                assert_eq!(dest, proxy.http, "{case}");
                for xff in app {
                    assert_eq!(
                        xff,
                        &source.ip().to_string(),
                        "{case}: a connection for {source} served another client"
                    );
                }
                sources.push(source.ip().to_string());
                reused |= conn.requests.len() > 1;
            }
            // A client's second request on its connection reuses its own.
            assert!(reused, "{case}: {seen:?}");
            sources.sort();
            sources.dedup();
            assert_eq!(sources, ["127.0.0.1", "127.0.0.2"], "{case}: {seen:?}");
        }
    }
}

fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// A TCP backend that answers `source|dest|` from the PROXY header it got
/// (or `none||`), then echoes everything until the client's EOF.
fn echo_backend() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            std::thread::spawn(move || {
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let Some((header, early)) = read_proxy(&mut s) else {
                    return;
                };
                let named = match header {
                    Some(Header::Proxied { source, dest }) => format!("{source}|{dest}|"),
                    other => format!("{other:?}||"),
                };
                let mut rest = Vec::new();
                let _ = s.read_to_end(&mut rest);
                let _ = s.write_all(&[named.as_bytes(), &early, &rest].concat());
            });
        }
    });
    addr
}

fn exchange(to: SocketAddr, bytes: &[u8]) -> String {
    let mut s = TcpStream::connect(to).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(bytes).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut got = String::new();
    let _ = s.read_to_string(&mut got);
    got
}

#[test]
fn tcp_listeners_take_and_send_proxy_headers() {
    let backend = echo_backend();
    let proxy = Proxy::start(&format!(
        "listeners:\n  relay:\n    protocol: tcp\n    listen: \"{{TCP}}\"\n    proxy_protocol: true\n    upstream: v2out\n  direct:\n    protocol: tcp\n    listen: \"{{HTTP}}\"\n    upstream: v1out\nupstreams:\n  v2out: {{ send_proxy_protocol: v2, backends: [{{ addr: \"{backend}\" }}] }}\n  v1out: {{ send_proxy_protocol: v1, backends: [{{ addr: \"{backend}\" }}] }}\n"
    ));
    // PROXY in (v1, with the first data in the same write) → v2 out.
    let got = exchange(
        proxy.tcp,
        b"PROXY TCP4 192.0.2.44 192.0.2.80 4444 5432\r\nhello",
    );
    assert_eq!(
        got,
        format!("192.0.2.44:4444|{}|hello", proxy.tcp),
        "{}",
        proxy.log()
    );
    let v2 = header(
        Version::V2,
        Some(ConnAddrs {
            client: "[2001:db8::7]:7".parse().unwrap(),
            local: "[2001:db8::80]:80".parse().unwrap(),
        }),
    );
    let got = exchange(proxy.tcp, &[&v2[..], b"six"].concat());
    // An IPv6 client to an IPv4 listener: both sent as IPv6.
    let local = format!("[::ffff:{}]:{}", proxy.tcp.ip(), proxy.tcp.port());
    assert_eq!(got, format!("[2001:db8::7]:7|{local}|six"));
    // No header in: closed, nothing sent on.
    assert_eq!(exchange(proxy.tcp, b"hello"), "");

    // Plain in → v1 out: the socket peer.
    let mut s = TcpStream::connect(proxy.http).unwrap();
    let client = s.local_addr().unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"ping").unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut got = String::new();
    let _ = s.read_to_string(&mut got);
    assert_eq!(got, format!("{client}|{}|ping", proxy.http));
}

/// PROXY in → PROXY out on Pingora's path: one socket peer (127.0.0.1)
/// relaying two clients; Pingora's pool keeps their connections apart.
#[test]
fn relayed_clients_never_share_a_backend_connection() {
    let backend = Backend::start();
    let proxy = Proxy::start(&format!(
        "listeners:\n  web:\n    listen: \"{{HTTP}}\"\n    proxy_protocol: true\n    forwarder: false\n    routes: [{{ upstream: pool }}]\nupstreams:\n  pool: {{ send_proxy_protocol: v1, backends: [{{ addr: \"{}\" }}] }}\n",
        backend.addr
    ));
    for client in [
        "10.9.0.1:1000",
        "10.9.0.2:2000",
        "10.9.0.1:1000",
        "10.9.0.2:2000",
    ] {
        let mut s = TcpStream::connect(proxy.http).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let addrs = ConnAddrs {
            client: client.parse().unwrap(),
            local: proxy.http,
        };
        s.write_all(&header(Version::V2, Some(addrs))).unwrap();
        let mut r = BufReader::new(s);
        for _ in 0..2 {
            r.get_mut()
                .write_all(b"GET /app HTTP/1.1\r\nHost: pp.test\r\n\r\n")
                .unwrap();
            assert_eq!(read_response(&mut r).expect("a response").status, 200);
        }
    }
    let seen = backend.seen();
    let mut reused = false;
    for conn in &seen {
        let Some(Header::Proxied { source, .. }) = conn.header else {
            panic!("no header: {conn:?}");
        };
        reused |= conn.requests.len() > 1;
        for (_, xff) in &conn.requests {
            assert_eq!(xff, &source.ip().to_string(), "{seen:?}");
        }
    }
    // Pooling still works within one client's address.
    assert!(reused, "{seen:?}");
}

/// A refused connect with a PROXY header to send is a connect failure like
/// any other: retried on the next backend, on both engines.
#[test]
fn a_refused_backend_is_retried_with_the_header_on_the_next() {
    let backend = Backend::start();
    let dead = format!("127.0.0.1:{}", free_port());
    for forwarder in [true, false] {
        let proxy = Proxy::start(&format!(
            "listeners:\n  web:\n    listen: \"{{HTTP}}\"\n    forwarder: {forwarder}\n    routes: [{{ upstream: pool }}]\nupstreams:\n  pool:\n    retries: 1\n    send_proxy_protocol: v2\n    backends: [{{ addr: \"{dead}\" }}, {{ addr: \"{}\" }}]\n",
            backend.addr
        ));
        for _ in 0..4 {
            let resp = get(proxy.http, "pp.test", "/retry");
            assert_eq!(resp.status, 200, "forwarder {forwarder}: {}", proxy.log());
        }
    }
    assert!(backend
        .seen()
        .iter()
        .all(|c| matches!(c.header, Some(Header::Proxied { .. }))));
}
