//! WebSocket (HTTP/1.1 Upgrade) through the proxy: a frame echo round trip
//! once the backend answered 101, and no tunnel when it answers anything
//! else. The backend is a few lines of std networking that speaks just
//! enough WebSocket framing (RFC 6455 §5.2) to echo one frame.

mod common;
use common::*;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the test backend saw: every request head, and every byte that
/// arrived after a head on its connection.
#[derive(Default)]
struct Seen {
    heads: Vec<String>,
    after_head: Vec<u8>,
}

/// A backend that answers `GET /ws` with 101 and then echoes WebSocket
/// frames, and any other path with `status` and a short body.
fn ws_backend(status: u16) -> (SocketAddr, Arc<Mutex<Seen>>) {
    ws_backend_with_delay(status, SLOW_101)
}

/// Pingora 0.9.1 tears an upgrade down right after the 101 when it reads the
/// backend's 101 before the upgrade request's (empty) end of body
/// (cloudflare/pingora#946, fix proposed in #947). A backend that takes a
/// moment to answer avoids that ordering; `instant_101_race` shows the bug.
const SLOW_101: Duration = Duration::from_millis(100);

fn ws_backend_with_delay(status: u16, delay: Duration) -> (SocketAddr, Arc<Mutex<Seen>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let shared = Arc::clone(&seen);
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let seen = Arc::clone(&shared);
            std::thread::spawn(move || serve(conn, status, delay, &seen));
        }
    });
    (addr, seen)
}

fn serve(conn: TcpStream, status: u16, delay: Duration, seen: &Mutex<Seen>) {
    conn.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut r = BufReader::new(conn);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let upgrade = head.starts_with("GET /ws ");
    seen.lock().unwrap().heads.push(head);
    let mut w = r.get_ref().try_clone().unwrap();
    if upgrade {
        std::thread::sleep(delay);
        let _ = w.write_all(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
        );
        // Echo frames: unmask what the client sent, send it back unmasked.
        while let Some(payload) = read_frame(&mut r) {
            let mut frame = vec![0x81, payload.len() as u8];
            frame.extend_from_slice(&payload);
            if w.write_all(&frame).is_err() {
                return;
            }
        }
    } else {
        let body = "no tunnel here";
        let _ = write!(
            w,
            "HTTP/1.1 {status} Whatever\r\nContent-Length: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n{body}",
            body.len()
        );
        let mut rest = [0u8; 1024];
        while let Ok(n) = r.read(&mut rest) {
            if n == 0 {
                break;
            }
            seen.lock()
                .unwrap()
                .after_head
                .extend_from_slice(&rest[..n]);
        }
    }
}

/// Reads one short frame (payload < 126 bytes) and unmasks it.
fn read_frame<R: Read>(r: &mut R) -> Option<Vec<u8>> {
    let mut h = [0u8; 2];
    r.read_exact(&mut h).ok()?;
    let masked = h[1] & 0x80 != 0;
    let len = usize::from(h[1] & 0x7f);
    let mut mask = [0u8; 4];
    if masked {
        r.read_exact(&mut mask).ok()?;
    }
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload).ok()?;
    if masked {
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= mask[i % 4];
        }
    }
    Some(payload)
}

/// A masked text frame, as a client must send it.
fn client_frame(text: &str) -> Vec<u8> {
    let mask = [0x11, 0x22, 0x33, 0x44];
    let mut f = vec![0x81, 0x80 | text.len() as u8];
    f.extend_from_slice(&mask);
    f.extend(text.bytes().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

const UPGRADE_HEAD: &str = "Host: chat.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

fn proxy_for(backend: SocketAddr) -> Proxy {
    Proxy::start(&format!(
        "listeners:\n  web:\n    listen: \"{{HTTP}}\"\n    routes: [{{ upstream: u }}]\nupstreams:\n  u: {{ backends: [{{ addr: \"{backend}\" }}] }}\n"
    ))
}

/// Reads a response head (through the blank line) without reading further.
fn read_head(r: &mut BufReader<TcpStream>) -> String {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    head
}

#[test]
fn websocket_echo_through_the_tunnel_after_101() {
    let (backend, seen) = ws_backend(404);
    let proxy = proxy_for(backend);
    let conn = TcpStream::connect(proxy.http).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut w = conn.try_clone().unwrap();
    let mut r = BufReader::new(conn);
    w.write_all(format!("GET /ws HTTP/1.1\r\n{UPGRADE_HEAD}").as_bytes())
        .unwrap();
    let head = read_head(&mut r);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}\n{}", proxy.log());
    let lower = head.to_ascii_lowercase();
    assert!(lower.contains("upgrade: websocket"), "{head}");
    assert!(lower.contains("connection: upgrade"), "{head}");
    for msg in ["hello", "through the proxy", "third"] {
        w.write_all(&client_frame(msg)).unwrap();
        let echoed =
            read_frame(&mut r).unwrap_or_else(|| panic!("no echo for {msg:?}\n{}", proxy.log()));
        assert_eq!(String::from_utf8_lossy(&echoed), msg);
    }
    let heads = &seen.lock().unwrap().heads;
    assert_eq!(heads.len(), 1);
    let sent = heads[0].to_ascii_lowercase();
    assert!(sent.contains("upgrade: websocket"), "{sent}");
    assert!(
        sent.contains("sec-websocket-key: dghlihnhbxbszsbub25jzq=="),
        "{sent}"
    );
}

#[test]
fn no_tunnel_unless_the_backend_answers_101() {
    for status in [200, 404] {
        let (backend, seen) = ws_backend(status);
        let proxy = proxy_for(backend);
        let conn = TcpStream::connect(proxy.http).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut w = conn.try_clone().unwrap();
        let mut r = BufReader::new(conn);
        w.write_all(format!("GET /plain HTTP/1.1\r\n{UPGRADE_HEAD}").as_bytes())
            .unwrap();
        let resp = read_response(&mut r).expect("a response");
        assert_eq!(resp.status, status, "{}", proxy.log());
        assert_eq!(resp.body, "no tunnel here");
        assert!(resp.header("upgrade").is_none(), "{:?}", resp.headers);
        // Bytes the client sends now are not tunnelled to the backend.
        let _ = w.write_all(&client_frame("must not pass"));
        r.get_ref()
            .set_read_timeout(Some(Duration::from_secs(1)))
            .unwrap();
        let mut rest = Vec::new();
        let _ = r.read_to_end(&mut rest);
        std::thread::sleep(Duration::from_millis(200));
        let seen = seen.lock().unwrap();
        assert!(
            !String::from_utf8_lossy(&seen.after_head).contains("must not pass")
                && !seen.after_head.contains(&0x81),
            "status {status}: backend got {:?}",
            seen.after_head
        );
    }
}

/// Reproduces cloudflare/pingora#946: with a backend that answers 101 at
/// once, some upgrades are closed right after the 101. Ignored until the
/// Pingora fix lands; run with `cargo test --test websocket -- --ignored`.
#[test]
#[ignore = "Pingora 0.9.1 bug cloudflare/pingora#946"]
fn instant_101_race() {
    let (backend, _) = ws_backend_with_delay(404, Duration::ZERO);
    let proxy = proxy_for(backend);
    for i in 0..50 {
        let conn = TcpStream::connect(proxy.http).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut w = conn.try_clone().unwrap();
        let mut r = BufReader::new(conn);
        w.write_all(format!("GET /ws HTTP/1.1\r\n{UPGRADE_HEAD}").as_bytes())
            .unwrap();
        assert!(read_head(&mut r).starts_with("HTTP/1.1 101"));
        w.write_all(&client_frame("ping")).unwrap();
        assert!(
            read_frame(&mut r).is_some(),
            "tunnel {i} closed after its 101"
        );
    }
}
