//! Connection caps through the real binary: at `server.max_connections` or
//! a listener's `max_connections` switchyard stops accepting. A client past
//! the cap connects (the kernel's backlog takes it) but gets no answer until
//! a connection closes; established connections and the admin listener are
//! served meanwhile, and the waiting costs no CPU. Also: the cap derived
//! from a low open-file limit (`prlimit`) keeps a flood of idle connections
//! from starving an established client.

mod common;
use common::*;

use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

const GET: &[u8] = b"GET /cap HTTP/1.1\r\nHost: cap.test\r\n\r\n";

fn open(addr: SocketAddr) -> BufReader<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    BufReader::new(s)
}

/// Sends a request on `conn` and checks that nothing comes back for `quiet`
/// (the connection waits in the backlog, not accepted).
fn unanswered(conn: &mut BufReader<TcpStream>, quiet: Duration) {
    conn.get_mut().write_all(GET).unwrap();
    conn.get_ref().set_read_timeout(Some(quiet)).unwrap();
    match conn.fill_buf() {
        Ok([]) => panic!("closed instead of waiting"),
        Ok(got) => panic!("answered past the cap: {:?}", String::from_utf8_lossy(got)),
        Err(e) => assert!(
            matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
            "{e}"
        ),
    }
    conn.get_ref()
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
}

fn wait_metric(proxy: &Proxy, name: &str, labels: &[(&str, &str)], want: f64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = proxy.metric(name, labels);
        if got == Some(want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name}{labels:?} = {got:?}, want {want}\n{}",
            proxy.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// CPU seconds (user + system) the process `pid` has used.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which may hold spaces) start at field 3;
    // utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // SAFETY: sysconf only reads.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    ticks as f64 / per_second
}

/// The whole cycle with `first` and `second` open at the cap: a third
/// client on `third_addr` waits unanswered, the first two and the admin
/// keep being served, no CPU burns, and closing `first` lets the third in.
/// Returns the second and third connections, open.
fn cap_cycle(
    proxy: &Proxy,
    first: SocketAddr,
    second: SocketAddr,
    third_addr: SocketAddr,
) -> [BufReader<TcpStream>; 2] {
    let mut a = open(first);
    let mut b = open(second);
    common::served_keep_alive(&mut a);
    common::served_keep_alive(&mut b);
    let mut c = open(third_addr);
    unanswered(&mut c, Duration::from_secs(1));

    let before = cpu_seconds(proxy.pid());
    std::thread::sleep(Duration::from_secs(1));
    let burnt = cpu_seconds(proxy.pid()) - before;
    assert!(burnt < 0.3, "{burnt:.2} s of CPU in 1 s while capped");

    common::served_keep_alive(&mut a);
    common::served_keep_alive(&mut b);
    let status = get(proxy.admin, "admin", "/status");
    assert_eq!(status.status, 200, "the admin answers while capped");

    drop(a);
    let resp = read_response(&mut c).expect("served once a slot freed");
    assert_eq!(resp.status, 200);
    common::served_keep_alive(&mut b);
    common::served_keep_alive(&mut c);
    [b, c]
}

#[test]
fn a_listener_at_its_cap_stops_accepting_until_a_connection_closes() {
    let b = backends("lcap", 1);
    let proxy = Proxy::start(&format!(
        "admin: {{ listen: \"{{ADMIN}}\" }}\nlisteners:\n  web:\n    listen: \"{{HTTP}}\"\n    max_connections: 2\n    routes: [{{ upstream: pool }}]\nupstreams:\n  pool: {{ backends: {} }}\n",
        backend_list(&b)
    ));
    let gauge = [("listener", "web")];
    // `Proxy::start`'s readiness probes held slots for a moment.
    wait_metric(&proxy, "switchyard_connections", &gauge, 0.0);
    let _open = cap_cycle(&proxy, proxy.http, proxy.http, proxy.http);
    wait_metric(&proxy, "switchyard_connections", &gauge, 2.0);

    let status: serde_json::Value =
        serde_json::from_str(&get(proxy.admin, "admin", "/status").body).unwrap();
    assert_eq!(status["listeners"]["web"]["max_connections"], 2);
    assert_eq!(status["listeners"]["web"]["connections"], 2);
    // A capped listener waits; it refuses nothing.
    let refused = [("listener", "web"), ("reason", "per_ip")];
    assert_eq!(
        proxy.metric("switchyard_connections_refused_total", &refused),
        None
    );
}

#[test]
fn the_server_cap_counts_every_listener_but_not_the_admin() {
    let b = backends("scap", 1);
    let proxy = Proxy::start(&format!(
        "server: {{ max_connections: 2 }}\nadmin: {{ listen: \"{{ADMIN}}\" }}\nlisteners:\n  one:\n    listen: \"{{HTTP}}\"\n    routes: [{{ upstream: pool }}]\n  two:\n    listen: \"{{TCP}}\"\n    forwarder: false\n    routes: [{{ upstream: pool }}]\nupstreams:\n  pool: {{ backends: {} }}\n",
        backend_list(&b)
    ));
    wait_metric(
        &proxy,
        "switchyard_connections",
        &[("listener", "one")],
        0.0,
    );
    wait_metric(
        &proxy,
        "switchyard_connections",
        &[("listener", "two")],
        0.0,
    );
    // One connection on each listener fills the server cap; a third on
    // either waits.
    let _open = cap_cycle(&proxy, proxy.http, proxy.tcp, proxy.tcp);
    let status: serde_json::Value =
        serde_json::from_str(&get(proxy.admin, "admin", "/status").body).unwrap();
    assert_eq!(status["max_connections"], 2);
}

#[test]
fn a_tcp_listener_at_its_cap_waits_too() {
    let b = backends("tcap", 1);
    let proxy = Proxy::start(&format!(
        "admin: {{ listen: \"{{ADMIN}}\" }}\nlisteners:\n  db:\n    protocol: tcp\n    listen: \"{{TCP}}\"\n    max_connections: 2\n    upstream: pool\nupstreams:\n  pool: {{ backends: {} }}\n",
        backend_list(&b)
    ));
    wait_metric(&proxy, "switchyard_connections", &[("listener", "db")], 0.0);
    let _open = cap_cycle(&proxy, proxy.tcp, proxy.tcp, proxy.tcp);
}

/// Under `prlimit --nofile=256` the derived cap, (256 - 128) / 2 = 64,
/// leaves descriptors for backend connections: 400 idle clients more than
/// it takes wait in the backlog, and an established client is still served.
#[test]
fn a_flood_of_idle_connections_under_a_low_fd_limit_does_not_starve_a_client() {
    if std::process::Command::new("prlimit")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("note: prlimit not found; skipping the low fd limit run");
        return;
    }
    let b = backends("fdcap", 1);
    let proxy = Proxy::start_wrapped(
        &format!(
            "admin: {{ listen: \"{{ADMIN}}\" }}\nlisteners:\n  web:\n    listen: \"{{HTTP}}\"\n    routes: [{{ upstream: pool }}]\nupstreams:\n  pool: {{ backends: {} }}\n",
            backend_list(&b)
        ),
        &[],
        &["prlimit", "--nofile=256:256", "--"],
    );
    assert!(
        proxy.log().contains("server.max_connections = 64"),
        "the derived cap is logged:\n{}",
        proxy.log()
    );
    wait_metric(
        &proxy,
        "switchyard_connections",
        &[("listener", "web")],
        0.0,
    );
    let mut established = open(proxy.http);
    common::served_keep_alive(&mut established);
    let idle: Vec<TcpStream> = (0..400)
        .map(|_| TcpStream::connect_timeout(&proxy.http, Duration::from_secs(5)).unwrap())
        .collect();
    wait_metric(
        &proxy,
        "switchyard_connections",
        &[("listener", "web")],
        64.0,
    );
    for _ in 0..3 {
        common::served_keep_alive(&mut established);
    }
    assert_eq!(get(proxy.admin, "admin", "/healthz").status, 200);
    drop(idle);
    // Once the flood is gone, new clients are taken again.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut fresh = open(proxy.http);
        fresh.get_mut().write_all(GET).unwrap();
        if read_response(&mut fresh).is_some_and(|r| r.status == 200) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no new client served after the flood"
        );
    }
    assert!(
        !proxy.log().contains("Too many open files"),
        "{}",
        proxy.log()
    );
}
