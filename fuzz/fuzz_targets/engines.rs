//! The two HTTP/1 engines held to one behaviour on random input: switchyard's
//! own forwarder (`src/h1`) and Pingora's proxy path (`src/proxy`), as
//! `tests/differential` does for its hand-written cases.
//!
//! An input is a raw request and a raw backend answer, split at the first
//! `\0\0` (no separator: all request, and the backend answers nothing).
//! One in-process switchyard (started on the first input) has two http
//! listeners with one catch-all route each to one upstream: `forwarder` and
//! `pingora` (`forwarder: false`). The request goes to each on a fresh
//! connection; every backend connection gets the answer and is closed. What
//! the client got (status lines, headers, framing, bodies, whether the
//! connection stayed open) and what the backend got (request line, headers,
//! body) are compared with `tests/differential/compare.rs`.
//!
//! Accepted, as `DELIBERATE` in `tests/differential/main.rs` accepts them:
//! `Date` headers (left out), response trailers (not compared), and how
//! much of a chunked body with broken framing got through before the cut.
//! Any other difference is rerun twice: one that shows every time panics
//! with both outputs; one that does not is printed as unstable.
//!
//! `ENGINES_VERBOSE=1` prints every aspect of every run. Inputs run one at
//! a time; every read has a deadline. The backend answers within
//! [`BACKEND_READ`] of the request; a client waits [`CLIENT_WAIT`] for each
//! response.
#![no_main]

#[allow(dead_code)]
#[path = "../../tests/differential/client.rs"]
mod client;
#[allow(dead_code)]
#[path = "../../tests/differential/compare.rs"]
mod compare;
#[allow(dead_code)]
#[path = "../../tests/differential/wire.rs"]
mod wire;

use std::io::{BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Mutex, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;

use client::Client;
use compare::{compared, diff, Obs};
use wire::{describe_request, header_fields, read_body, read_lines, show, Record};

/// Between the request and the backend's answer in an input.
const SEPARATOR: &[u8] = b"\0\0";
/// The longest a client waits for one response (and for the next one).
const CLIENT_WAIT: Duration = Duration::from_millis(300);
/// The longest the backend waits for any read of a request.
const BACKEND_READ: Duration = Duration::from_millis(100);
/// Responses read per run at most.
const MAX_RESPONSES: usize = 8;

/// The scripted backend: every connection gets the current answer.
struct Backend {
    addr: SocketAddr,
    answer: Mutex<Vec<u8>>,
    /// Bumped at the start of every run; a connection belongs to the run
    /// that was current when it was accepted.
    run: AtomicU64,
    /// Connections accepted and not closed yet.
    active: AtomicUsize,
    /// (run, what the backend received).
    records: Mutex<Vec<(u64, Record)>>,
}

struct Harness {
    backend: &'static Backend,
    forwarder: SocketAddr,
    pingora: SocketAddr,
    server: JoinHandle<()>,
}

static HARNESS: OnceLock<Harness> = OnceLock::new();
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fuzz_target!(|data: &[u8]| {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let h = HARNESS.get_or_init(start);
    let (request, answer) = match data.windows(SEPARATOR.len()).position(|w| w == SEPARATOR) {
        Some(i) => (&data[..i], &data[i + SEPARATOR.len()..]),
        None => (data, &[][..]),
    };
    if request.is_empty() {
        return;
    }
    *h.backend.answer.lock().unwrap() = answer.to_vec();
    let Some(first) = differences(h, request) else {
        return;
    };
    // Timing can make one run differ: a difference must show every time.
    let again = (0..2).filter(|_| differences(h, request).is_some()).count();
    if again < 2 {
        eprintln!(
            "engines: an unstable difference (shown once, then {again} of 2 reruns), not failing:\n  request: {}\n  answer:  {}\n{}",
            show_all(request),
            show_all(answer),
            first
        );
        return;
    }
    panic!(
        "the engines differ (every one of 3 runs)\n  request: {}\n  answer:  {}\n{}",
        show_all(request),
        show_all(answer),
        first
    );
});

/// Sends `request` through both engines; what differs beyond what is
/// accepted, with both outputs.
fn differences(h: &Harness, request: &[u8]) -> Option<String> {
    let obs = [h.forwarder, h.pingora].map(|addr| {
        alive(h);
        let mut o = run(h, addr, request);
        normalise(&mut o);
        o
    });
    alive(h);
    let pairs = compared(&obs[0], &obs[1]);
    if std::env::var_os("ENGINES_VERBOSE").is_some() {
        eprintln!("----- {}", show_all(request));
        for (aspect, a, b) in &pairs {
            eprintln!(
                "  [{aspect}]\n    forwarder: {}\n    pingora:   {}",
                a.replace('\n', "\n               "),
                b.replace('\n', "\n               ")
            );
        }
    }
    let mut problems = String::new();
    for (aspect, a, b) in &pairs {
        if a == b || accepted(aspect, &obs[0], &obs[1]) {
            continue;
        }
        problems.push_str(&format!("    differs in {aspect}:\n{}", diff(a, b)));
    }
    if problems.is_empty() {
        return None;
    }
    let mut text = problems;
    for (engine, o) in ["forwarder", "pingora"].iter().zip(&obs) {
        text.push_str(&format!("  {engine} got:\n"));
        for (aspect, a, _) in &compared(o, o) {
            if !a.is_empty() {
                text.push_str(&format!(
                    "    [{aspect}] {}\n",
                    a.replace('\n', "\n           ")
                ));
            }
        }
    }
    Some(text)
}

/// Whether a difference in `aspect` is one `DELIBERATE` accepts.
fn accepted(aspect: &str, a: &Obs, b: &Obs) -> bool {
    match aspect {
        // Pingora 0.9's HTTP/1 path drops response trailers.
        "trailers" => true,
        // How much of a chunked body with broken framing gets through.
        "body" => a.responses.iter().zip(&b.responses).all(|pair| match pair {
            (Ok(x), Ok(y)) if x.body != y.body => {
                x.framing == "chunked"
                    && y.framing == "chunked"
                    && x.end != "complete"
                    && y.end != "complete"
                    && (x.body.starts_with(&y.body) || y.body.starts_with(&x.body))
            }
            _ => true,
        }),
        _ => false,
    }
}

/// Leaves out what is accepted to differ in every response: `Date`.
fn normalise(o: &mut Obs) {
    for r in o.responses.iter_mut().flatten() {
        r.headers.retain(|(n, _)| !n.eq_ignore_ascii_case("date"));
    }
}

/// Panics when switchyard's server thread has ended.
fn alive(h: &Harness) {
    assert!(
        !h.server.is_finished(),
        "switchyard's server thread has ended (see its panic above)"
    );
}

/// `request` once through the listener at `addr`, on a fresh connection.
fn run(h: &Harness, addr: SocketAddr, request: &[u8]) -> Obs {
    let b = h.backend;
    // No backend connection of an earlier run is left, and the proxy's
    // pools had time to see the closes.
    b.settle();
    thread::sleep(Duration::from_millis(15));
    let run = b.run.fetch_add(1, SeqCst) + 1;
    let mut c = Client::connect(addr, CLIENT_WAIT);
    let mut obs = Obs::default();
    // A write the proxy refuses shows in what is read.
    let _ = c.s.write_all(request);
    let head = request.starts_with(b"HEAD ");
    for i in 0..MAX_RESPONSES {
        let r = c.response(head && i == 0, Vec::new());
        let failed = r.is_err();
        obs.responses.push(r);
        if failed {
            break;
        }
    }
    obs.after = if c.closed { "closed" } else { "open" }.into();
    drop(c);
    b.settle();
    obs.backend = b
        .records
        .lock()
        .unwrap()
        .iter()
        .filter(|(r, _)| *r == run)
        .map(|(_, text)| text.clone())
        .collect();
    b.records.lock().unwrap().retain(|(r, _)| *r > run);
    obs
}

impl Backend {
    /// Waits (at most 2 s) until no backend connection is open.
    fn settle(&self) {
        let end = Instant::now() + Duration::from_secs(2);
        while self.active.load(SeqCst) > 0 && Instant::now() < end {
            thread::sleep(Duration::from_millis(2));
        }
    }

    /// One connection: reads a request (head, and body by its framing),
    /// records it, sends the answer, closes.
    fn serve(&self, s: TcpStream, run: u64) {
        let _ = s.set_nodelay(true);
        let _ = s.set_read_timeout(Some(BACKEND_READ));
        let Ok(mut out) = s.try_clone() else {
            return;
        };
        let mut r = BufReader::new(s);
        let record = match read_lines(&mut r) {
            Some(lines) => {
                let headers = header_fields(&lines[1..]);
                let (body, _) = read_body(&mut r, &headers);
                describe_request(&lines, &headers, &body)
            }
            None => "(no complete request head)".into(),
        };
        self.records.lock().unwrap().push((run, record));
        let answer = self.answer.lock().unwrap().clone();
        let _ = out.write_all(&answer);
        let _ = out.shutdown(Shutdown::Write);
        // Read what is left for a moment, so the close is not a reset.
        let end = Instant::now() + BACKEND_READ;
        let mut sink = [0u8; 4096];
        while Instant::now() < end {
            match r.read(&mut sink) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
    }
}

/// Starts the backend and switchyard; returns once both listeners accept.
fn start() -> Harness {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let backend: &'static Backend = Box::leak(Box::new(Backend {
        addr: l.local_addr().unwrap(),
        answer: Mutex::default(),
        run: AtomicU64::new(0),
        active: AtomicUsize::new(0),
        records: Mutex::default(),
    }));
    thread::spawn(move || {
        for s in l.incoming() {
            let Ok(s) = s else { continue };
            backend.active.fetch_add(1, SeqCst);
            let run = backend.run.load(SeqCst);
            thread::spawn(move || {
                backend.serve(s, run);
                backend.active.fetch_sub(1, SeqCst);
            });
        }
    });

    let free = || {
        TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
    };
    let (forwarder, pingora) = (free(), free());
    let yaml = format!(
        r#"server: {{ threads: 1 }}
listeners:
  forwarder:
    listen: "{forwarder}"
    routes: [{{ upstream: main }}]
  pingora:
    listen: "{pingora}"
    forwarder: false
    routes: [{{ upstream: main }}]
upstreams:
  main: {{ read_timeout: 1s, backends: [{{ addr: "{}" }}] }}
"#,
        backend.addr
    );
    let file = std::env::temp_dir().join(format!(
        "switchyard-fuzz-engines-{}.yaml",
        std::process::id()
    ));
    std::fs::write(&file, yaml).unwrap();
    let loaded = switchyard::config::load_file(&file.to_string_lossy())
        .unwrap_or_else(|e| panic!("the fuzz config does not load: {e}"));
    let _ = std::fs::remove_file(&file);
    let server = thread::spawn(move || {
        let server = switchyard::server::build(
            &loaded.config,
            &file,
            switchyard::server::StartOptions {
                daemon: false,
                upgrade: false,
            },
        )
        .unwrap_or_else(|e| panic!("switchyard does not build: {e}"));
        server.run_forever();
    });

    let end = Instant::now() + Duration::from_secs(20);
    for addr in [forwarder, pingora] {
        while TcpStream::connect(addr).is_err() {
            assert!(
                Instant::now() < end && !server.is_finished(),
                "switchyard does not accept on {addr}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
    Harness {
        backend,
        forwarder,
        pingora,
        server,
    }
}

/// All of `b` as escaped text (the reports need every byte).
fn show_all(b: &[u8]) -> String {
    if b.len() <= 100 {
        show(b)
    } else {
        format!("\"{}\" ({} bytes)", b.escape_ascii(), b.len())
    }
}
