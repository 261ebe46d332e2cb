//! Backend `max_conns` and the upstream `queue` through the real binary, on
//! both HTTP engines (the forwarder at `{HTTP}`, Pingora's path at `{TCP}`
//! with `forwarder: false`) and on a tcp listener: a backend never sees more
//! than `max_conns` at once, requests past it wait and are all served, a full
//! queue and a wait past `queue.timeout` answer 503 with `Retry-After: 1`
//! (without a queue at once), and a full backend is skipped by
//! `consistent_hash` and sticky cookies like a down one.

mod common;
use common::*;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A backend that answers every request after `delay` and records how many
/// it was working on at once.
struct Counting {
    addr: SocketAddr,
    now: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
}

impl Counting {
    fn start(delay: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let now = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let (n, p) = (Arc::clone(&now), Arc::clone(&peak));
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                let (n, p) = (Arc::clone(&n), Arc::clone(&p));
                std::thread::spawn(move || serve(conn, delay, &n, &p));
            }
        });
        Self { addr, now, peak }
    }
}

fn serve(conn: TcpStream, delay: Duration, now: &AtomicUsize, peak: &AtomicUsize) {
    let mut reader = BufReader::new(conn);
    loop {
        // A GET head: lines up to the empty one.
        let mut line = String::new();
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) if line == "\r\n" => break,
                Ok(_) => {}
            }
        }
        let working = now.fetch_add(1, Ordering::SeqCst) + 1;
        peak.fetch_max(working, Ordering::SeqCst);
        std::thread::sleep(delay);
        now.fetch_sub(1, Ordering::SeqCst);
        let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        if reader.get_mut().write_all(answer).is_err() {
            return;
        }
    }
}

fn start(listener_extra: &str, routes: &str, upstreams: &str) -> Proxy {
    Proxy::start(&format!(
        "server: {{ threads: 1 }}\nadmin: {{ listen: \"{{ADMIN}}\" }}\nlisteners:\n  fwd:\n    listen: \"{{HTTP}}\"\n{listener_extra}    routes: {routes}\n  pingora:\n    listen: \"{{TCP}}\"\n    forwarder: false\n{listener_extra}    routes: {routes}\nupstreams:\n{upstreams}"
    ))
}

fn engines(p: &Proxy) -> [(&'static str, SocketAddr); 2] {
    [("forwarder", p.http), ("pingora", p.tcp)]
}

/// A request in a thread of its own: (status, Retry-After, X-Backend).
fn spawn_get(
    addr: SocketAddr,
    target: &str,
    headers: &str,
) -> std::thread::JoinHandle<(u16, Option<String>, Option<String>)> {
    let raw =
        format!("GET {target} HTTP/1.1\r\nHost: q.test\r\n{headers}Connection: close\r\n\r\n");
    std::thread::spawn(move || {
        let r = send(addr, raw.as_bytes());
        let retry = r.header("retry-after").map(str::to_string);
        let backend = r.header("x-backend").map(str::to_string);
        (r.status, retry, backend)
    })
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn metric(p: &Proxy, name: &str, upstream: &str) -> f64 {
    p.metric(name, &[("upstream", upstream)]).unwrap_or(0.0)
}

#[test]
fn a_backend_never_exceeds_max_conns_and_the_queue_serves_everyone() {
    let backend = Counting::start(Duration::from_millis(200));
    let p = start(
        "",
        "[{ upstream: u }]",
        &format!(
            "  u:\n    backends: [{{ addr: \"{}\", max_conns: 2 }}]\n    queue: {{ max: 100, timeout: 20s }}\n",
            backend.addr
        ),
    );
    for (engine, addr) in engines(&p) {
        backend.peak.store(0, Ordering::SeqCst);
        let requests: Vec<_> = (0..8).map(|_| spawn_get(addr, "/work", "")).collect();
        // Requests past the two in flight wait in the queue.
        wait_until("a queued request", || {
            metric(&p, "switchyard_queue_depth", "u") >= 1.0
        });
        for r in requests {
            assert_eq!(r.join().unwrap().0, 200, "{engine}");
        }
        let peak = backend.peak.load(Ordering::SeqCst);
        assert_eq!(peak, 2, "{engine}: peak concurrency at the backend");
        assert_eq!(backend.now.load(Ordering::SeqCst), 0);
        wait_until("an empty queue", || {
            metric(&p, "switchyard_queue_depth", "u") == 0.0
        });
    }
    assert_eq!(metric(&p, "switchyard_queue_timeouts_total", "u"), 0.0);
    let status: serde_json::Value =
        serde_json::from_str(&get(p.admin, "admin", "/status").body).unwrap();
    assert_eq!(status["upstreams"]["u"]["backends"][0]["max_conns"], 2);
    assert_eq!(status["upstreams"]["u"]["queue"]["max"], 100);
}

#[test]
fn a_full_queue_a_wait_too_long_and_no_queue_answer_503_retry_after() {
    let slow = [
        Counting::start(Duration::from_millis(1500)),
        Counting::start(Duration::from_millis(1500)),
        Counting::start(Duration::from_millis(1500)),
    ];
    let p = start(
        "",
        "[{ path_prefix: /full, upstream: full }, { path_prefix: /late, upstream: late }, { path_prefix: /none, upstream: none }]",
        &format!(
            "  full:\n    backends: [{{ addr: \"{}\", max_conns: 1 }}]\n    queue: {{ max: 1, timeout: 20s }}\n  late:\n    backends: [{{ addr: \"{}\", max_conns: 1 }}]\n    queue: {{ max: 10, timeout: 200ms }}\n  none:\n    backends: [{{ addr: \"{}\", max_conns: 1 }}]\n",
            slow[0].addr, slow[1].addr, slow[2].addr
        ),
    );
    let overloaded = (503, Some("1".to_string()), None);
    for (engine, addr) in engines(&p) {
        // The queue holds one: the third request is refused at once.
        let timeouts = metric(&p, "switchyard_queue_timeouts_total", "full");
        let busy = spawn_get(addr, "/full", "");
        wait_until("the first in flight", || {
            slow[0].now.load(Ordering::SeqCst) == 1
        });
        let queued = spawn_get(addr, "/full", "");
        wait_until("the second queued", || {
            metric(&p, "switchyard_queue_depth", "full") == 1.0
        });
        let refused = spawn_get(addr, "/full", "").join().unwrap();
        assert_eq!(refused, overloaded, "{engine}: queue full");
        assert_eq!(busy.join().unwrap().0, 200, "{engine}");
        assert_eq!(
            queued.join().unwrap().0,
            200,
            "{engine}: served from the queue"
        );
        assert_eq!(
            metric(&p, "switchyard_queue_timeouts_total", "full"),
            timeouts + 1.0
        );

        // A wait past queue.timeout.
        let busy = spawn_get(addr, "/late", "");
        wait_until("the first in flight", || {
            slow[1].now.load(Ordering::SeqCst) == 1
        });
        let waited = spawn_get(addr, "/late", "").join().unwrap();
        assert_eq!(waited, overloaded, "{engine}: queue timeout");
        assert_eq!(busy.join().unwrap().0, 200, "{engine}");

        // No queue: at once.
        let busy = spawn_get(addr, "/none", "");
        wait_until("the first in flight", || {
            slow[2].now.load(Ordering::SeqCst) == 1
        });
        let refused = spawn_get(addr, "/none", "").join().unwrap();
        assert_eq!(refused, overloaded, "{engine}: no queue");
        assert_eq!(busy.join().unwrap().0, 200, "{engine}");
    }
    for b in &slow {
        assert_eq!(b.peak.load(Ordering::SeqCst), 1);
    }
}

/// `consistent_hash` and a sticky cookie both move a request off a full
/// backend to the other one (no queue: else it would be 503).
#[test]
fn a_full_backend_is_skipped_by_consistent_hash_and_sticky_cookies() {
    let b = backends("skip", 2);
    let list = |bs: &[DemoServer]| {
        let items: Vec<String> = bs
            .iter()
            .map(|s| format!("{{ addr: \"{}\", max_conns: 1 }}", s.addr))
            .collect();
        format!("[{}]", items.join(", "))
    };
    let p = start(
        "",
        "[{ path_prefix: /hash, upstream: hash }, { path_prefix: /sticky, upstream: sticky, sticky: { cookie: SY } }]",
        &format!(
            "  hash:\n    policy: consistent_hash\n    hash_key: header:X-Key\n    backends: {}\n  sticky:\n    backends: {}\n",
            list(&b),
            list(&b)
        ),
    );
    for (engine, addr) in engines(&p) {
        let key = "X-Key: k1\r\n";
        let (status, _, home) = spawn_get(addr, "/hash", key).join().unwrap();
        assert_eq!(status, 200);
        let busy = spawn_get(addr, "/hash?sleep_ms=1500", key);
        wait_until("the slow one in flight", || {
            b.iter().map(|s| p.inflight("hash", s)).sum::<f64>() == 1.0
        });
        let (status, _, moved) = spawn_get(addr, "/hash", key).join().unwrap();
        assert_eq!(
            status, 200,
            "{engine}: consistent_hash skips the full backend"
        );
        assert_ne!(moved, home, "{engine}");
        assert_eq!(busy.join().unwrap().2, home, "{engine}");

        let first = send(
            addr,
            b"GET /sticky HTTP/1.1\r\nHost: q.test\r\nConnection: close\r\n\r\n",
        );
        let cookie = first.header("set-cookie").expect("a sticky cookie");
        let cookie = format!("Cookie: {}\r\n", cookie.split(';').next().unwrap());
        let pinned = first.backend().map(str::to_string);
        let busy = spawn_get(addr, "/sticky?sleep_ms=1500", &cookie);
        wait_until("the slow one in flight", || {
            b.iter().map(|s| p.inflight("sticky", s)).sum::<f64>() == 1.0
        });
        let (status, _, moved) = spawn_get(addr, "/sticky", &cookie).join().unwrap();
        assert_eq!(status, 200, "{engine}: the sticky backend is full");
        assert_ne!(moved, pinned, "{engine}");
        assert_eq!(busy.join().unwrap().2, pinned, "{engine}");
    }
}

/// On a tcp listener `max_conns` counts open connections: a second client
/// waits in the queue until the first closes.
#[test]
fn a_tcp_connection_waits_in_the_queue_for_a_backend_slot() {
    let b = backends("tq", 1);
    let p = Proxy::start(&format!(
        "admin: {{ listen: \"{{ADMIN}}\" }}\nlisteners:\n  db:\n    protocol: tcp\n    listen: \"{{TCP}}\"\n    upstream: pool\nupstreams:\n  pool:\n    backends: [{{ addr: \"{}\", max_conns: 1 }}]\n    queue: {{ max: 5, timeout: 20s }}\n",
        b[0].addr
    ));
    let get_on = |c: &mut BufReader<TcpStream>| {
        c.get_mut()
            .write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        read_response(c).expect("a response").status
    };
    // `Proxy::start`'s probe connections may still hold the slot.
    wait_until("no connection open", || {
        p.inflight("pool", &b[0]) == 0.0 && metric(&p, "switchyard_queue_depth", "pool") == 0.0
    });
    let open = || {
        let s = TcpStream::connect(p.tcp).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        BufReader::new(s)
    };
    let mut first = open();
    assert_eq!(get_on(&mut first), 200);
    let mut second = open();
    second
        .get_mut()
        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    wait_until("the second queued", || {
        metric(&p, "switchyard_queue_depth", "pool") == 1.0
    });
    assert_eq!(get_on(&mut first), 200, "the first keeps its backend");
    drop(first);
    let resp = read_response(&mut second).expect("served once the first closed");
    assert_eq!(resp.status, 200);
    assert_eq!(p.inflight("pool", &b[0]), 1.0);
}
