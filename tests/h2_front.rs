//! What switchyard's own HTTP/2 front (src/http2) adds to a request's path:
//! request bodies of unknown length reach an HTTP/1.1 backend in chunks,
//! HTTP/2 requests are counted like any other, and an idle HTTP/2
//! connection is told GOAWAY and closed after `server.idle_timeout`.

mod common;
use common::*;

use common::h2frames::*;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn h2c_proxy(b: &[DemoServer], server: &str) -> Proxy {
    Proxy::start(&format!(
        "{server}admin: {{ listen: \"{{ADMIN}}\" }}\nlisteners:\n  web:\n    listen: \"{{HTTP}}\"\n    h2c: true\n    routes: [{{ host: 127.0.0.1, path_prefix: /, upstream: u }}]\nupstreams:\n  u: {{ backends: {} }}\n",
        backend_list(b)
    ))
}

#[test]
fn a_body_of_unknown_length_reaches_the_backend_in_chunks() {
    let b = backends("up", 1);
    let proxy = h2c_proxy(&b, "");
    let body = "0123456789".repeat(5000);
    // `-T -` sends stdin as the body, of no length known up front: DATA
    // frames without Content-Length.
    let mut child = Command::new("curl")
        .args(["-s", "-S", "--max-time", "10", "--http2-prior-knowledge"])
        .args(["-T", "-", "-X", "POST"])
        .arg(format!("http://{}/upload", proxy.http))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("curl is installed by scripts/install-deps.sh");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("method: POST"), "{text}");
    assert!(
        text.contains(&format!("body-bytes: {}", body.len())),
        "{text}"
    );
    assert!(text.contains("header transfer-encoding: chunked"), "{text}");
    assert!(!text.contains("header content-length"), "{text}");
}

#[test]
fn http2_requests_are_counted_per_route_like_http1() {
    let b = backends("count", 1);
    let proxy = h2c_proxy(&b, "");
    let url = format!("http://{}/c", proxy.http);
    for _ in 0..3 {
        let (ok, out, err) = curl(&["--http2-prior-knowledge", &url]);
        assert!(ok && out.contains("backend: count-1"), "{err}");
    }
    let (ok, _, _) = curl(&[
        "--http2-prior-knowledge",
        "-H",
        "Host: nowhere.test",
        &format!("http://{}/", proxy.http),
    ]);
    assert!(ok);
    let routed = proxy.metric(
        "switchyard_http_requests_total",
        &[
            ("listener", "web"),
            ("route", "web-0"),
            ("status", "200"),
            ("upstream", "u"),
        ],
    );
    assert_eq!(routed, Some(3.0), "{}", proxy.metrics());
    let unrouted = proxy.metric(
        "switchyard_http_requests_total",
        &[
            ("listener", "web"),
            ("route", ""),
            ("status", "404"),
            ("upstream", ""),
        ],
    );
    assert_eq!(unrouted, Some(1.0), "{}", proxy.metrics());
    assert_eq!(b[0].hits(), 3);
}

#[test]
fn an_idle_http2_connection_gets_goaway_then_is_closed() {
    let b = backends("idle", 1);
    let proxy = h2c_proxy(&b, "server: { idle_timeout: 1s }\n");
    let started = Instant::now();
    let mut c = Conn::open(proxy.http);
    let goaway = c.wait_for(|kind, _| kind == GOAWAY);
    assert!(goaway.is_some(), "no GOAWAY");
    let after = started.elapsed();
    assert!(
        after >= Duration::from_millis(800),
        "GOAWAY after {after:?}, before the idle timeout"
    );
    // Then the connection closes, the client having said nothing more.
    c.s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    c.until_closed(Duration::from_secs(5));
}

#[test]
fn a_reset_stream_closes_its_backend_connection_at_once() {
    // A backend that reads a request and never answers; it reports when
    // the proxy closes the connection.
    let backend = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = backend.local_addr().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (mut conn, _) = backend.accept().unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut buf = [0u8; 4096];
        loop {
            match conn.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let _ = tx.send("request");
                }
            }
        }
        let _ = tx.send("closed");
    });
    let proxy = Proxy::start(&format!(
        "listeners:\n  web:\n    listen: \"{{HTTP}}\"\n    h2c: true\n    routes: [{{ upstream: u }}]\nupstreams:\n  u: {{ backends: [{{ addr: \"{addr}\" }}], read_timeout: 30s }}\n"
    ));
    let mut c = Conn::open(proxy.http);
    assert!(c.send(&h2_get(1, "/wait", &[])));
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(5)),
        Ok("request"),
        "{}",
        proxy.log()
    );
    let reset_at = Instant::now();
    assert!(c.send(&frame(RST_STREAM, 0, 1, &CANCEL.to_be_bytes())));
    let mut closed = false;
    while let Ok(m) = rx.recv_timeout(Duration::from_secs(5)) {
        if m == "closed" {
            closed = true;
            break;
        }
    }
    assert!(closed, "the backend connection outlived the reset stream");
    assert!(
        reset_at.elapsed() < Duration::from_secs(2),
        "closed {:?} after the reset",
        reset_at.elapsed()
    );
}

#[test]
fn a_streamed_body_over_max_body_bytes_gets_413() {
    let b = backends("cap", 1);
    let proxy = h2c_proxy(&b, "server: { max_body_bytes: 1000 }\n");
    // No Content-Length: the limit is found while the body streams.
    let mut child = Command::new("curl")
        .args(["-s", "-S", "--max-time", "10", "--http2-prior-knowledge"])
        .args([
            "-T",
            "-",
            "-X",
            "POST",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .arg(format!("http://{}/upload", proxy.http))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("curl is installed by scripts/install-deps.sh");
    let mut stdin = child.stdin.take().unwrap();
    // Written from a thread: switchyard may stop reading once it answered.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&[b'x'; 50_000]);
    });
    let out = child.wait_with_output().unwrap();
    let _ = writer.join();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "413",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The backend never got a whole request.
    assert_eq!(b[0].hits(), 0);
}
