//! `switchyard upgrade` through the real binary, against daemons: clients on
//! new connections see no failure across the switch while a plain stop/start
//! does fail some (the negative control that shows the test can tell), a long
//! request finishes on the old process, keep-alive clients are closed cleanly,
//! a changed config is live and a removed listener is closed afterwards.

mod common;
use common::daemon::*;
use common::*;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Clients that each open a new connection per request, until stopped or
/// their bound (count, time) is reached.
struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<Vec<Result<u16, String>>>>,
}

impl Load {
    fn start(addr: SocketAddr, threads: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..threads)
            .map(|_| {
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || {
                    let deadline = Instant::now() + Duration::from_secs(25);
                    let mut results = Vec::new();
                    while !stop.load(Ordering::Relaxed)
                        && results.len() < 1500
                        && Instant::now() < deadline
                    {
                        results.push(try_get(addr, "x", "/").map(|r| r.status));
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    results
                })
            })
            .collect();
        Load { stop, threads }
    }

    /// (requests sent, failures: an error or a status other than 200)
    fn finish(self) -> (usize, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        let mut total = 0;
        let mut failures = Vec::new();
        for t in self.threads {
            for r in t.join().unwrap() {
                total += 1;
                match r {
                    Ok(200) => {}
                    Ok(s) => failures.push(format!("status {s}")),
                    Err(e) => failures.push(e),
                }
            }
        }
        (total, failures)
    }
}

fn one_route(http: SocketAddr, servers: &[DemoServer]) -> String {
    format!(
        "listeners:\n  web: {{ listen: \"{http}\", routes: [{{ upstream: u }}] }}\nupstreams:\n  u: {{ backends: {} }}\n",
        backend_list(servers)
    )
}

#[test]
fn upgrade_under_load_fails_no_request_and_a_long_request_finishes() {
    let old_b = backends("old", 2);
    let new_b = backends("new", 1);
    let d = Daemons::new(10);
    let http = loopback(free_port());
    let a = d.conf("a.yaml", &one_route(http, &old_b));
    // The new config adds a route to other backends.
    let b = d.conf(
        "b.yaml",
        &format!(
            "listeners:\n  web: {{ listen: \"{http}\", routes: [{{ host: new.test, upstream: n }}, {{ upstream: u }}] }}\nupstreams:\n  u: {{ backends: {} }}\n  n: {{ backends: {} }}\n",
            backend_list(&old_b),
            backend_list(&new_b)
        ),
    );
    let old = d.start(&a);
    let load = Load::start(http, 4);
    std::thread::sleep(Duration::from_millis(300));
    // In flight on the old process from before the switch until well after it
    // stops accepting (5 s after SIGQUIT).
    let long = std::thread::spawn(move || KeepAliveClient::new(http).get("/?sleep_ms=8000"));
    std::thread::sleep(Duration::from_millis(200));

    let started = Instant::now();
    let (code, out) = d.upgrade(&b);
    let took = started.elapsed();
    assert_eq!(code, 0, "upgrade failed:\n{out}\n{}", d.error_log());
    let new = d.pid().unwrap();
    assert_ne!(new, old);
    assert!(alive(new));

    // Keep the clients running across the moment the old process stops accepting.
    std::thread::sleep(Duration::from_secs(7));
    let (total, failures) = load.finish();
    let long = long.join().unwrap();
    let live = wait_until(Duration::from_secs(10), || {
        try_get(http, "new.test", "/").is_ok_and(|r| r.backend() == Some("new-1"))
    });
    let old_exited = wait_until(Duration::from_secs(20), || !alive(old));
    eprintln!(
        "upgrade took {took:?}; {total} requests on new connections, {} failed; long request: {long:?}",
        failures.len()
    );

    assert!(total >= 200, "too few requests: {total}");
    assert!(
        failures.is_empty(),
        "{} of {total} failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(
        matches!(
            long,
            KeepAlive::Answered {
                status: 200,
                close: true
            }
        ),
        "the long request should finish on the draining process with Connection: close: {long:?}"
    );
    assert!(live, "the new route is not served");
    assert_eq!(get(http, "x", "/").status, 200);
    assert!(
        old_exited,
        "the old instance did not exit after its grace period"
    );
    // Both processes appended to one access log; none of their lines was lost.
    assert!(
        d.access_lines() > total,
        "{} access log lines for {total} requests",
        d.access_lines()
    );
    assert!(alive(new), "the new instance died:\n{}", d.error_log());
}

#[test]
fn stop_then_start_drops_requests_that_upgrade_keeps() {
    // The negative control: the same clients across a plain SIGTERM + start.
    let b = backends("ss", 1);
    let d = Daemons::new(1);
    let http = loopback(free_port());
    let conf = d.conf("a.yaml", &one_route(http, &b));
    let old = d.start(&conf);
    let load = Load::start(http, 4);
    std::thread::sleep(Duration::from_millis(300));
    assert!(signal(old, "-TERM"));
    assert!(wait_until(Duration::from_secs(15), || !alive(old)));
    let new = d.start(&conf);
    std::thread::sleep(Duration::from_millis(300));
    let (total, failures) = load.finish();
    eprintln!(
        "stop/start: {total} requests on new connections, {} failed",
        failures.len()
    );
    assert_ne!(new, old);
    assert!(
        !failures.is_empty(),
        "a stop/start should fail some requests, or this test cannot tell"
    );
}

#[test]
fn keep_alive_clients_across_an_upgrade_never_see_a_broken_response() {
    let b = backends("ka", 2);
    let d = Daemons::new(2);
    let http = loopback(free_port());
    let conf = d.conf("a.yaml", &one_route(http, &b));
    d.start(&conf);
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..3)
        .map(|_| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut c = KeepAliveClient::new(http);
                let mut seen = Vec::new();
                let deadline = Instant::now() + Duration::from_secs(25);
                while !stop.load(Ordering::Relaxed) && seen.len() < 800 && Instant::now() < deadline
                {
                    seen.push(c.get("/?sleep_ms=10"));
                }
                seen
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let (code, out) = d.upgrade(&conf);
    assert_eq!(code, 0, "upgrade failed:\n{out}\n{}", d.error_log());
    // The old process stops accepting 5 s after SIGQUIT, then drains.
    std::thread::sleep(Duration::from_secs(7));
    stop.store(true, Ordering::Relaxed);
    let seen: Vec<KeepAlive> = clients
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    let told_to_close = seen
        .iter()
        .filter(|k| matches!(k, KeepAlive::Answered { close: true, .. }))
        .count();
    let closed_between = seen
        .iter()
        .filter(|k| matches!(k, KeepAlive::ClosedBetween))
        .count();
    let broken: Vec<_> = seen
        .iter()
        .filter(|k| {
            !matches!(
                k,
                KeepAlive::Answered { status: 200, .. } | KeepAlive::ClosedBetween
            )
        })
        .collect();
    eprintln!(
        "keep-alive: {} requests, {told_to_close} answered with Connection: close, {closed_between} closed between requests, {} broken",
        seen.len(),
        broken.len()
    );
    assert!(broken.is_empty(), "{broken:?}");
    assert!(
        told_to_close + closed_between >= 3,
        "every client's connection to the old process should have been closed"
    );
}

#[test]
fn sigterm_closes_idle_keep_alive_connections_and_finishes_busy_ones() {
    use std::io::{BufReader, Read, Write};
    let b = backends("term", 1);
    let d = Daemons::new(3);
    let http = loopback(free_port());
    let conf = d.conf("a.yaml", &one_route(http, &b));
    let pid = d.start(&conf);

    let mut idle = std::net::TcpStream::connect(http).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    idle.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut idle = BufReader::new(idle);
    let first = read_response(&mut idle).unwrap();
    assert_eq!(first.header("connection"), Some("keep-alive"));

    let busy = std::thread::spawn(move || {
        let mut c = KeepAliveClient::new(http);
        (c.get("/"), c.get("/?sleep_ms=2000"))
    });
    std::thread::sleep(Duration::from_millis(700));
    assert!(signal(pid, "-TERM"));

    // The idle connection ends with a clean FIN, not a reset.
    let mut rest = Vec::new();
    let end = idle.read_to_end(&mut rest);
    assert!(
        matches!(end, Ok(0)),
        "idle keep-alive connection: {end:?} {rest:?}"
    );
    let (warm, slow) = busy.join().unwrap();
    assert!(
        matches!(
            warm,
            KeepAlive::Answered {
                status: 200,
                close: false
            }
        ),
        "{warm:?}"
    );
    assert!(
        matches!(
            slow,
            KeepAlive::Answered {
                status: 200,
                close: true
            }
        ),
        "in-flight request at SIGTERM: {slow:?}"
    );
    assert!(wait_until(Duration::from_secs(15), || !alive(pid)));
}

#[test]
fn a_listener_removed_from_the_config_is_closed_after_the_upgrade() {
    let b = backends("rm", 1);
    let d = Daemons::new(1);
    let (web, extra) = (loopback(free_port()), loopback(free_port()));
    let both = d.conf(
        "both.yaml",
        &format!(
            "listeners:\n  web: {{ listen: \"{web}\", routes: [{{ upstream: u }}] }}\n  extra: {{ listen: \"{extra}\", routes: [{{ upstream: u }}] }}\nupstreams:\n  u: {{ backends: {} }}\n",
            backend_list(&b)
        ),
    );
    let only_web = d.conf("web.yaml", &one_route(web, &b));
    let old = d.start(&both);
    assert_eq!(get(extra, "x", "/").status, 200);

    let (code, out) = d.upgrade(&only_web);
    assert_eq!(code, 0, "upgrade failed:\n{out}\n{}", d.error_log());
    let new = d.pid().unwrap();
    assert!(
        wait_until(Duration::from_secs(20), || !alive(old)),
        "old instance did not exit"
    );
    assert!(alive(new));
    // Nobody holds the removed listener's socket: connections are refused,
    // not queued on a socket that the new process inherited and never serves.
    let refused = std::net::TcpStream::connect_timeout(&extra, Duration::from_secs(2));
    assert!(
        matches!(&refused, Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused),
        "removed listener {extra}: {refused:?}"
    );
    assert!(d.error_log().contains("not claimed by any service"));
    assert_eq!(get(web, "x", "/").status, 200);
}

#[test]
fn upgrade_with_an_invalid_config_leaves_the_running_instance_alone() {
    let b = backends("inv", 1);
    let d = Daemons::new(1);
    let http = loopback(free_port());
    let good = d.conf("good.yaml", &one_route(http, &b));
    let bad = d.conf(
        "bad.yaml",
        &one_route(http, &b).replace("upstream: u }", "upstream: nope }"),
    );
    let pid = d.start(&good);
    let (code, out) = d.upgrade(&bad);
    let (check_code, _, check_err) = check(&bad);
    assert_eq!((code, check_code), (1, 1), "{out}");
    for line in check_err.lines() {
        assert!(
            out.contains(line),
            "`check` says {line:?}; upgrade said:\n{out}"
        );
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(alive(pid));
    assert_eq!(d.pid(), Some(pid));
    assert_eq!(get(http, "x", "/").status, 200);
}

#[test]
fn upgrade_without_a_running_instance_fails_clearly() {
    let b = backends("none", 1);
    let d = Daemons::new(1);
    let http = loopback(free_port());
    let conf = d.conf("a.yaml", &one_route(http, &b));
    let (code, out) = d.upgrade(&conf);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("no running instance"), "{out}");

    // A stale pid file that names some other process: never signal it.
    std::fs::write(d.pid_file(), std::process::id().to_string()).unwrap();
    let (code, out) = d.upgrade(&conf);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("not switchyard"), "{out}");
}

#[test]
fn upgrade_to_an_unusable_certificate_leaves_the_running_instance_serving() {
    let b = backends("cert", 1);
    let d = Daemons::new(1);
    let (http, https) = (loopback(free_port()), loopback(free_port()));
    let good = d.conf("good.yaml", &one_route(http, &b));
    // The files exist but hold no certificate: the config loader reads the
    // PEMs, so this is a config error and nothing is touched.
    let pem = d.dir.path().join("garbage.pem");
    std::fs::write(&pem, "not a certificate\n").unwrap();
    let bad = d.conf(
        "bad.yaml",
        &format!(
            "listeners:\n  web: {{ listen: \"{http}\", routes: [{{ upstream: u }}] }}\n  secure: {{ listen: \"{https}\", tls: {{ cert: \"{p}\", key: \"{p}\" }}, routes: [{{ upstream: u }}] }}\nupstreams:\n  u: {{ backends: {} }}\n",
            backend_list(&b),
            p = pem.display()
        ),
    );
    assert_eq!(
        check(&bad).0,
        1,
        "an unusable certificate is a config error"
    );
    let pid = d.start(&good);
    let (code, out) = d.upgrade(&bad);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("listeners.secure.tls"), "{out}");
    std::thread::sleep(Duration::from_millis(300));
    assert!(alive(pid));
    assert_eq!(
        d.pid(),
        Some(pid),
        "the pid file still names the running instance"
    );
    assert_eq!(get(http, "x", "/").status, 200);
}
