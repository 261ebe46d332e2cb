//! Memory per idle HTTP/2 connection over TLS: each client connection
//! negotiates h2 by ALPN, makes one request, reads the answer, then stays
//! open doing nothing. As benches/http_peers does for HTTP/1.1: a fresh
//! proxy, one request first, its resident memory (master and workers)
//! before and after the idle connections are open.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use h2::client::SendRequest;
use tokio::net::TcpStream;
use tokio::runtime::Runtime;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::TlsConnector;

use crate::proxies::{self, Cert};
use crate::table::median;

/// Opened `BATCH` at a time, answers read before the next batch, so the
/// proxy's memory afterwards is what idle connections hold rather than the
/// peak of every handshake and request in flight at once.
const BATCH: usize = 100;

/// One connection: TLS with ALPN h2, the HTTP/2 handshake, one GET
/// answered 200 and read to its end. Its task answers the server (PING,
/// SETTINGS) for as long as the returned handle lives.
async fn connect(addr: SocketAddr, tls: TlsConnector) -> SendRequest<Bytes> {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let name = ServerName::try_from("localhost").unwrap();
    let stream = tls.connect(name, tcp).await.expect("TLS handshake");
    let alpn = stream.get_ref().1.alpn_protocol();
    assert_eq!(alpn, Some(&b"h2"[..]), "{addr} did not negotiate h2");
    let (send, conn) = h2::client::handshake(stream).await.expect("h2 preface");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut send = send.ready().await.expect("h2 connection ready");
    let req = http::Request::get(format!("https://{addr}/"))
        .body(())
        .unwrap();
    let (answer, _) = send.send_request(req, true).expect("request sent");
    let answer = answer.await.expect("an answer");
    assert_eq!(answer.status(), 200, "{addr} answered {}", answer.status());
    let mut body = answer.into_body();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.expect("the body");
        let _ = body.flow_control().release_capacity(chunk.len());
    }
    send
}

/// Opens `n` idle HTTP/2 connections to `addr`; they close when the
/// handles are dropped.
fn open(rt: &Runtime, addr: SocketAddr, n: usize, tls: &TlsConnector) -> Vec<SendRequest<Bytes>> {
    let mut open = Vec::with_capacity(n);
    while open.len() < n {
        let batch = (0..BATCH.min(n - open.len())).map(|_| {
            let conn = connect(addr, tls.clone());
            async move {
                tokio::time::timeout(Duration::from_secs(20), conn)
                    .await
                    .expect("connected and answered within 20 s")
            }
        });
        open.extend(rt.block_on(futures::future::join_all(batch)));
    }
    open
}

/// One proxy's resident memory without and with the idle connections, KiB.
struct Rss {
    before: u64,
    after: u64,
}

/// Measures every proxy `rounds` times (a fresh proxy each time, rounds
/// interleaved) with `n` idle connections and prints the table.
pub fn memory(dir: &Path, cert: &Cert, backends: [SocketAddr; 2], n: usize, rounds: usize) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let tls = TlsConnector::from(Arc::new(crate::pinned::h2_client(&cert.cert)));
    let mut results: Vec<Vec<Rss>> = crate::PROXIES.iter().map(|_| Vec::new()).collect();
    for _ in 0..rounds {
        for (i, name) in crate::PROXIES.iter().enumerate() {
            let p = proxies::start(name, dir, cert, backends, crate::PINNED);
            // One connection first, so lazily built state (pools, TLS and
            // HTTP/2 contexts) is not counted as the connections' cost.
            drop(open(&rt, p.run.addr, 1, &tls));
            std::thread::sleep(Duration::from_millis(300));
            let before = p.run.rss_kib();
            let conns = open(&rt, p.run.addr, n, &tls);
            std::thread::sleep(Duration::from_secs(1));
            let after = p.run.rss_kib();
            results[i].push(Rss { before, after });
            drop(conns);
        }
    }
    print(n, &results);
}

fn print(n: usize, results: &[Vec<Rss>]) {
    let mib = |kib: u64| kib as f64 / 1024.0;
    let per_conn = |r: &Rss| r.after.saturating_sub(r.before) as f64 / n as f64;
    println!("\n### Memory: {n} idle HTTP/2 connections over TLS (ALPN h2, one request each), one worker pinned to CPU {}\n", crate::PROXY_CPU);
    println!("| proxy | round | RSS idle, MiB | RSS with {n} idle, MiB | growth, MiB | per connection, KiB |");
    println!("|---|---|---:|---:|---:|---:|");
    let mut medians = Vec::new();
    for (name, rounds) in crate::PROXIES.iter().zip(results) {
        for (round, r) in rounds.iter().enumerate() {
            println!(
                "| {name} | {} | {:.1} | {:.1} | {:.1} | {:.2} |",
                round + 1,
                mib(r.before),
                mib(r.after),
                mib(r.after.saturating_sub(r.before)),
                per_conn(r)
            );
        }
        let med = |f: &dyn Fn(&Rss) -> f64| median(rounds.iter().map(f).collect());
        let m = med(&per_conn);
        medians.push(m);
        println!(
            "| **{name}** | **median** | **{:.1}** | **{:.1}** | **{:.1}** | **{m:.2}** |",
            med(&|r| mib(r.before)),
            med(&|r| mib(r.after)),
            med(&|r| mib(r.after.saturating_sub(r.before))),
        );
    }
    let leanest = medians[1..].iter().copied().fold(f64::INFINITY, f64::min);
    println!(
        "\nswitchyard / leanest peer: **{:.2}×** memory per idle HTTP/2 connection (a fresh proxy per round; RSS summed over the proxy's processes, 1 s after the last connection answered)",
        medians[0] / leanest
    );
}
