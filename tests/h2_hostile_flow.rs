//! Hostile HTTP/2 clients that abuse flow control and control frames, on an
//! h2c listener in front of plain HTTP/1.1 backends (frames written by hand,
//! tests/common/h2frames.rs). What a user relies on: such a client costs a
//! bounded amount of the proxy's memory (a stream's response waits under
//! backpressure, at most `MAX_SEND_BUFFER` of it queued in the proxy), other
//! clients are served meanwhile, and all of it is released when the client
//! goes.

mod common;
use common::h2frames::*;
use common::*;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The response to `/big`: 100 streams of it is 400 MiB, which the proxy
/// must not take from the backends faster than its client takes it.
const BIG: u64 = 4 << 20;
/// Streams the abusive client opens: the proxy's max_concurrent_streams.
const STREAMS: u32 = 100;

#[derive(Default)]
struct Stats {
    requests: AtomicUsize,
    /// Responses to `/big` being written now.
    busy: AtomicUsize,
    /// Bytes the backend's sockets took.
    written: AtomicU64,
}

/// An HTTP/1.1 backend that answers `/big` with [`BIG`] bytes written from
/// one static buffer (its own memory does not grow with what it sends) and
/// anything else with `small`. Its sockets' send buffers are kept small, so
/// what waits in the kernel stays small too: what it managed to write is
/// about what the proxy read.
struct BigBackend {
    addr: SocketAddr,
    stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
}

impl BigBackend {
    fn start() -> BigBackend {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stats = Arc::new(Stats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (stats.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if sp.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let st = st.clone();
                std::thread::spawn(move || serve(conn, &st));
            }
        });
        BigBackend { addr, stats, stop }
    }

    fn requests(&self) -> usize {
        self.stats.requests.load(Ordering::Relaxed)
    }

    fn busy(&self) -> usize {
        self.stats.busy.load(Ordering::Relaxed)
    }

    fn written(&self) -> u64 {
        self.stats.written.load(Ordering::Relaxed)
    }
}

impl Drop for BigBackend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wakes the accept loop so that it sees `stop`.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

/// SO_SNDBUF of 64 KiB (the kernel doubles it); autotuning stays off.
fn small_send_buffer(s: &TcpStream) {
    use std::os::fd::AsRawFd;
    let size: libc::c_int = 64 * 1024;
    // SAFETY: a valid socket descriptor, and an option value of the stated
    // type and length that lives across the call.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "setsockopt SO_SNDBUF");
}

fn serve(conn: TcpStream, stats: &Stats) {
    small_send_buffer(&conn);
    // A stalled write ends the connection after this long (a bound for a
    // proxy that would neither read nor close).
    let _ = conn.set_write_timeout(Some(Duration::from_secs(20)));
    let _ = conn.set_read_timeout(Some(Duration::from_secs(20)));
    let mut out = conn.try_clone().unwrap();
    let mut r = BufReader::new(conn);
    static CHUNK: [u8; 64 * 1024] = [b'z'; 64 * 1024];
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let target = line.split_whitespace().nth(1).unwrap_or("").to_string();
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            if h.trim_end().is_empty() {
                break;
            }
        }
        stats.requests.fetch_add(1, Ordering::Relaxed);
        if target != "/big" {
            let small = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nsmall";
            if out.write_all(small).is_err() {
                return;
            }
            continue;
        }
        stats.busy.fetch_add(1, Ordering::Relaxed);
        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {BIG}\r\n\r\n");
        let mut left = BIG;
        let mut ok = out.write_all(head.as_bytes()).is_ok();
        while ok && left > 0 {
            let n = (left as usize).min(CHUNK.len());
            match out.write(&CHUNK[..n]) {
                Ok(0) | Err(_) => ok = false,
                Ok(n) => {
                    left -= n as u64;
                    stats.written.fetch_add(n as u64, Ordering::Relaxed);
                }
            }
        }
        stats.busy.fetch_sub(1, Ordering::Relaxed);
        if !ok {
            return;
        }
    }
}

/// One worker thread: every connection shares it (so a hostile one must
/// not starve the others), and the allocator's per-thread heap, so that a
/// second round reuses what the first one freed.
fn h2c_proxy(backends: &str) -> Proxy {
    Proxy::start(&format!(
        "server: {{ threads: 1 }}\nlisteners:\n  web:\n    listen: \"{{HTTP}}\"\n    h2c: true\n    routes: [{{ upstream: u }}]\nupstreams:\n  u: {{ backends: {backends} }}\n"
    ))
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Polls `f` every 50 ms until it holds or `limit` passes.
fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

/// Waits until `value` has not changed for 400 ms (at most `limit`).
fn settled(limit: Duration, value: impl Fn() -> u64) -> u64 {
    let deadline = Instant::now() + limit;
    let mut last = value();
    let mut since = Instant::now();
    while Instant::now() < deadline && since.elapsed() < Duration::from_millis(400) {
        std::thread::sleep(Duration::from_millis(50));
        let now = value();
        if now != last {
            last = now;
            since = Instant::now();
        }
    }
    last
}

/// How the abusive client withholds its window.
#[derive(Clone, Copy, Debug)]
enum Abuse {
    /// SETTINGS_INITIAL_WINDOW_SIZE 0, never a WINDOW_UPDATE: responses
    /// may not carry a byte of DATA. The client reads what may come.
    ZeroWindow,
    /// Windows opened wide (2^31 - 1), and the socket is never read: the
    /// proxy may send, and what TCP does not take waits in the proxy.
    NeverReads,
}

/// What one round measured.
struct Round {
    peak: u64,
    after: u64,
}

/// One round: `STREAMS` requests for `/big` from one abusive client, a
/// second client served meanwhile, the abusive client gone, everything
/// released. Memory in KiB: the peak while the responses wait, what stays
/// afterwards.
fn abuse(proxy: &Proxy, backend: &BigBackend, how: Abuse) -> Round {
    let pid = proxy.pid();
    let requests = backend.requests();
    let written = backend.written();
    let before = proc_kib(pid, "VmRSS");
    assert!(reset_peak(pid), "cannot reset VmHWM of {pid}");

    let mut c = match how {
        Abuse::ZeroWindow => Conn::open_with(proxy.http, &[(INITIAL_WINDOW_SIZE, 0)]),
        Abuse::NeverReads => {
            let mut c = Conn::open_with(proxy.http, &[(INITIAL_WINDOW_SIZE, 0x7fff_ffff)]);
            assert!(c.send(&window_update(0, 0x7fff_ffff - 65_535)));
            c
        }
    };
    let burst: Vec<u8> = (0..STREAMS)
        .flat_map(|i| h2_get(1 + 2 * i, "/big", &[]))
        .collect();
    assert!(c.send(&burst));
    if let Abuse::ZeroWindow = how {
        // Every stream gets its response head; not one byte of body.
        let (mut heads, mut data) = (0, 0);
        while heads < STREAMS {
            let f = c
                .read_frame()
                .unwrap_or_else(|e| panic!("after {heads} heads: {e}\n{}", proxy.log()));
            match f.kind {
                HEADERS => {
                    assert_eq!(status_of(&f.payload), Some(200), "{f:?}");
                    heads += 1;
                }
                DATA => data += f.payload.len(),
                RST_STREAM | GOAWAY => panic!("{f:?}\n{}", proxy.log()),
                _ => {}
            }
        }
        assert_eq!(data, 0, "DATA sent into a zero window");
    }
    let all = requests + STREAMS as usize;
    assert!(
        wait_until(Duration::from_secs(10), || backend.requests() >= all),
        "{} of {STREAMS} requests reached the backend\n{}",
        backend.requests() - requests,
        proxy.log()
    );
    // The backend writes until the proxy stops reading.
    let taken = settled(Duration::from_secs(10), || backend.written()) - written;
    assert_eq!(backend.busy(), STREAMS as usize, "responses ended early");

    // Another client is served meanwhile.
    let mut other = Conn::open(proxy.http);
    assert_eq!(other.status(1, "/small"), Some(200), "{}", proxy.log());

    let peak = proc_kib(pid, "VmHWM");
    let held = proc_kib(pid, "VmRSS");

    // The client goes: every backend exchange it held ends.
    drop(c);
    let released = wait_until(Duration::from_secs(10), || backend.busy() == 0);
    let after = settled(Duration::from_secs(5), || proc_kib(pid, "VmRSS"));
    eprintln!(
        "{how:?}: backends wrote {:.1} MiB of {} MiB (kernel buffers included); \
         VmRSS {:.1} MiB before, peak {:.1}, {:.1} held, {:.1} after the client left",
        taken as f64 / (1 << 20) as f64,
        (BIG * u64::from(STREAMS)) >> 20,
        mib(before),
        mib(peak),
        mib(held),
        mib(after)
    );
    assert!(
        released,
        "{} backend responses still being read after the client left",
        backend.busy()
    );
    // 100 streams x (64 KiB the h2 send buffer may queue + 16 KiB the
    // forwarder reads at a time + a backend connection) is about 8 MiB;
    // twice that for the allocator, plus the h2 connection's own buffers,
    // stays far below 32 MiB, and 400 MiB was on offer.
    assert!(
        peak.saturating_sub(before) < 32 * 1024,
        "{how:?}: peak RSS grew by {:.1} MiB",
        mib(peak - before)
    );
    Round { peak, after }
}

/// Twice the same abuse: the second round costs no more than the first
/// (what the first held was released and reused, not leaked).
fn twice(how: Abuse) {
    let backend = BigBackend::start();
    let proxy = h2c_proxy(&format!("[{{ addr: \"{}\" }}]", backend.addr));
    let mut warm = Conn::open(proxy.http);
    assert_eq!(warm.status(1, "/small"), Some(200), "{}", proxy.log());
    drop(warm);
    let first = abuse(&proxy, &backend, how);
    let second = abuse(&proxy, &backend, how);
    // A leak of what a round holds (about 12 MiB in the NeverReads case)
    // would show here; the slack is for allocator noise (measured: at most
    // 1.1 MiB).
    assert!(
        second.after <= first.after + 4 * 1024,
        "{how:?}: RSS after the second round {:.1} MiB, after the first {:.1} MiB",
        mib(second.after),
        mib(first.after)
    );
    assert!(
        second.peak <= first.peak + 4 * 1024,
        "{how:?}: peak of the second round {:.1} MiB, of the first {:.1} MiB",
        mib(second.peak),
        mib(first.peak)
    );
    assert!(!proxy.log().contains("panicked"), "{}", proxy.log());
}

#[test]
fn zero_window_streams_cost_bounded_memory_released_on_close() {
    twice(Abuse::ZeroWindow);
}

#[test]
fn unread_responses_cost_bounded_memory_released_on_close() {
    twice(Abuse::NeverReads);
}

/// A stream whose client withholds its window is a wait on that client, and
/// `server.idle_timeout` is the longest such wait: the stream is reset and
/// its backend connection closed once that time has passed, so one
/// connection cannot hold 100 backend connections for as long as it stays
/// open.
#[test]
fn withheld_window_is_timed_out_by_idle_timeout() {
    let backend = BigBackend::start();
    let proxy = Proxy::start(&format!(
        "server: {{ threads: 1, idle_timeout: 1s }}\nlisteners:\n  web:\n    listen: \"{{HTTP}}\"\n    h2c: true\n    routes: [{{ upstream: u }}]\nupstreams:\n  u: {{ read_timeout: 1s, backends: [{{ addr: \"{}\" }}] }}\n",
        backend.addr
    ));
    let mut c = Conn::open_with(proxy.http, &[(INITIAL_WINDOW_SIZE, 0)]);
    let burst: Vec<u8> = (0..10)
        .flat_map(|i| h2_get(1 + 2 * i, "/big", &[]))
        .collect();
    assert!(c.send(&burst));
    assert!(wait_until(Duration::from_secs(5), || backend.busy() == 10));
    // The client keeps its connection open (and keeps reading, so its
    // socket never fills) and never opens a window.
    c.s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let released = wait_until(Duration::from_secs(6), || {
        let _ = c.read_frame();
        backend.busy() == 0
    });
    assert!(
        released,
        "{} backend exchanges still held 6 s after a 1 s idle_timeout",
        backend.busy()
    );
}

/// A PING flood from a client that never reads the PONGs: the h2 server
/// answers one PING before it reads the next, so once the PONGs back up it
/// stops reading, and TCP pushes back on the flood. Nothing queues in the
/// proxy, and other clients are served throughout.
#[test]
fn unread_ping_flood_is_pushed_back_and_others_are_served() {
    let b = backends("ping", 1);
    let proxy = h2c_proxy(&backend_list(&b));
    let pid = proxy.pid();
    let mut warm = Conn::open(proxy.http);
    assert_eq!(warm.status(1, "/warm"), Some(200), "{}", proxy.log());
    let before = proc_kib(pid, "VmRSS");
    assert!(reset_peak(pid), "cannot reset VmHWM of {pid}");

    // 4,000,000 PINGs: 68 MB, far more than the sockets' buffers hold.
    const PINGS: usize = 4_000_000;
    let mut c = Conn::open(proxy.http);
    c.s.set_write_timeout(Some(Duration::from_secs(1))).unwrap();
    let ping = frame(PING, 0, 0, b"floodme!");
    let writer = c.flood(Vec::new(), PINGS, move |_| ping.clone());
    // Served while the flood goes on.
    let mut other = Conn::open(proxy.http);
    assert_eq!(other.status(1, "/during"), Some(200), "{}", proxy.log());
    let (pings, bytes) = writer.join().unwrap();
    let peak = proc_kib(pid, "VmHWM");
    eprintln!(
        "the socket took {pings} of {PINGS} PINGs ({:.1} MiB); VmRSS {:.1} MiB before, peak {:.1} MiB",
        bytes as f64 / (1 << 20) as f64,
        mib(before),
        mib(peak)
    );
    assert!(pings < PINGS, "the whole flood was taken: no backpressure");
    // Pushed back, the flood leaves the proxy one frame and one PONG to
    // write per connection; 16 MiB is room for the allocator and runtime.
    assert!(
        peak.saturating_sub(before) < 16 * 1024,
        "peak RSS grew by {:.1} MiB",
        mib(peak - before)
    );
    assert_eq!(other.status(3, "/after"), Some(200), "{}", proxy.log());
    drop(c);
    let mut fresh = Conn::open(proxy.http);
    assert_eq!(fresh.status(1, "/fresh"), Some(200), "{}", proxy.log());
    assert_eq!(b[0].hits(), 4);
    assert!(!proxy.log().contains("panicked"), "{}", proxy.log());
}
