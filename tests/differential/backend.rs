//! The scripted backend: one thread per connection, each request answered
//! by the script of its case (`/case/N` in its target), what it received
//! recorded per case for comparison.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::cases::{answer, Step};
use crate::wire::{describe_request, header_fields, read_body, read_lines, Record};

/// The longest the backend waits for any read.
const BACKEND_WAIT: Duration = Duration::from_secs(2);

/// What the backend's threads share.
struct Shared {
    scripts: Vec<Vec<Step>>,
    /// Per case: the requests received (probes left out).
    records: Mutex<HashMap<usize, Vec<Record>>>,
    /// Per case: requests whose head arrived and which are not recorded yet.
    busy: Mutex<HashMap<usize, usize>>,
    /// Bumped to make idle connections close.
    epoch: AtomicU64,
    /// Connections waiting for a next request.
    idle: AtomicUsize,
    stop: AtomicBool,
}

/// The scripted backend: each request is answered by the script of its
/// case; it stops when dropped.
pub struct Backend {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

impl Backend {
    /// Listens on a fresh loopback port; `scripts[n]` answers case `n`.
    pub fn start(scripts: Vec<Vec<Step>>) -> Backend {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let addr = l.local_addr().unwrap();
        let shared = Arc::new(Shared {
            scripts,
            records: Mutex::default(),
            busy: Mutex::default(),
            epoch: AtomicU64::new(0),
            idle: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
        });
        let sh = Arc::clone(&shared);
        thread::spawn(move || {
            let end = Instant::now() + Duration::from_secs(300);
            while !sh.stop.load(SeqCst) && Instant::now() < end {
                match l.accept() {
                    Ok((s, _)) => {
                        let sh = Arc::clone(&sh);
                        thread::spawn(move || serve(s, &sh));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        Backend { addr, shared }
    }

    /// Closes every idle connection, so the next request opens a new one.
    pub fn fresh(&self) {
        self.shared.epoch.fetch_add(1, SeqCst);
        let end = Instant::now() + Duration::from_secs(1);
        while self.shared.idle.load(SeqCst) > 0 && Instant::now() < end {
            thread::sleep(Duration::from_millis(2));
        }
        // Time for the proxy's pools to see the close.
        thread::sleep(Duration::from_millis(15));
    }

    /// What case `n` made the backend receive since the last call.
    pub fn take(&self, n: usize) -> Vec<Record> {
        thread::sleep(Duration::from_millis(10));
        let end = Instant::now() + BACKEND_WAIT + Duration::from_millis(500);
        while self
            .shared
            .busy
            .lock()
            .unwrap()
            .get(&n)
            .copied()
            .unwrap_or(0)
            > 0
            && Instant::now() < end
        {
            thread::sleep(Duration::from_millis(5));
        }
        self.shared
            .records
            .lock()
            .unwrap()
            .remove(&n)
            .unwrap_or_default()
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.shared.stop.store(true, SeqCst);
    }
}

/// The case a request target belongs to: `/case/N` anywhere in it.
fn case_of(target: &str) -> Option<usize> {
    let at = target.find("/case/")? + "/case/".len();
    let digits: String = target[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// One backend connection: requests, each answered by its case's script.
fn serve(s: TcpStream, sh: &Shared) {
    let _ = s.set_nonblocking(false);
    let _ = s.set_nodelay(true);
    let Ok(mut out) = s.try_clone() else { return };
    let mut r = BufReader::with_capacity(64 * 1024, s);
    for _ in 0..1000 {
        if !wait_for_request(&mut r, sh) {
            return;
        }
        let _ = r.get_ref().set_read_timeout(Some(BACKEND_WAIT));
        let Some(lines) = read_lines(&mut r) else {
            return;
        };
        let target = lines[0].split(' ').nth(1).unwrap_or("").to_string();
        let probe = target.ends_with("/probe");
        let case = case_of(&target).filter(|_| !probe);
        let steps = if probe {
            answer(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nprobe")
        } else {
            case.and_then(|c| sh.scripts.get(c).cloned())
                .unwrap_or_else(|| answer(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"))
        };
        if let Some(c) = case {
            *sh.busy.lock().unwrap().entry(c).or_default() += 1;
        }
        let headers = header_fields(&lines[1..]);
        let mut recorded = false;
        let mut record = |body: String| {
            if let (Some(c), false) = (case, recorded) {
                let text = describe_request(&lines, &headers, &body);
                sh.records.lock().unwrap().entry(c).or_default().push(text);
                *sh.busy.lock().unwrap().entry(c).or_default() -= 1;
            }
            recorded = true;
        };
        let mut open = true;
        for step in steps {
            match step {
                Step::Continue => {
                    let expects = headers.iter().any(|(n, v)| {
                        n.eq_ignore_ascii_case("expect") && v.eq_ignore_ascii_case("100-continue")
                    });
                    if expects && out.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").is_err() {
                        open = false;
                    }
                }
                Step::ReadBody => {
                    let (body, intact) = read_body(&mut r, &headers);
                    record(body);
                    open &= intact;
                }
                Step::Send(bytes) => open &= out.write_all(&bytes).is_ok(),
                Step::Pause(ms) => thread::sleep(Duration::from_millis(ms)),
                Step::Hang => {
                    hold(&mut r, Duration::from_secs(4));
                    open = false;
                }
                Step::Tunnel => {
                    echo(&mut r, &mut out);
                    open = false;
                }
                Step::Close => open = false,
            }
            if !open {
                break;
            }
        }
        record("(not read)".into());
        if !open {
            let _ = out.shutdown(Shutdown::Write);
            // Read what is left for a moment, so the close is not a reset.
            let _ = r
                .get_ref()
                .set_read_timeout(Some(Duration::from_millis(50)));
            let _ = r.read(&mut [0u8; 4096]);
            return;
        }
    }
}

/// Waits for the first byte of a next request; false when the connection
/// closed, or was told to close ([`Backend::fresh`]) while idle.
fn wait_for_request(r: &mut BufReader<TcpStream>, sh: &Shared) -> bool {
    if !r.buffer().is_empty() {
        return true;
    }
    let epoch = sh.epoch.load(SeqCst);
    sh.idle.fetch_add(1, SeqCst);
    let _ = r.get_ref().set_read_timeout(Some(Duration::from_millis(5)));
    let end = Instant::now() + Duration::from_secs(120);
    let ready = loop {
        match r.fill_buf() {
            Ok(b) => break !b.is_empty(),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if sh.epoch.load(SeqCst) != epoch || sh.stop.load(SeqCst) || Instant::now() > end {
                    break false;
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => break false,
        }
    };
    sh.idle.fetch_sub(1, SeqCst);
    ready
}

/// Reads and drops what arrives until the peer closes or `limit` passes.
fn hold(r: &mut BufReader<TcpStream>, limit: Duration) {
    let end = Instant::now() + limit;
    let _ = r
        .get_ref()
        .set_read_timeout(Some(Duration::from_millis(50)));
    let mut sink = [0u8; 4096];
    while Instant::now() < end {
        match r.read(&mut sink) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return,
        }
    }
}

/// The tunnel's far end: echoes what arrives until the peer closes.
fn echo(r: &mut BufReader<TcpStream>, out: &mut TcpStream) {
    let _ = r.get_ref().set_read_timeout(Some(BACKEND_WAIT));
    let mut buf = [0u8; 4096];
    for _ in 0..1000 {
        match r.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                let mut reply = b"echo:".to_vec();
                reply.extend_from_slice(&buf[..n]);
                if out.write_all(&reply).is_err() {
                    return;
                }
            }
        }
    }
}
