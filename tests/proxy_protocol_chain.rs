//! Two switchyards in a row, the way a PROXY-speaking edge feeds a TLS
//! origin: client →(PROXY v1) front →(PROXY v2, then TLS; HTTP/1.1 or h2)
//! back (TLS listener with `proxy_protocol`) → demo backend. The header
//! goes out before the TLS handshake, and the client address survives both
//! hops.

mod common;
use common::*;

use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

#[test]
fn the_client_address_crosses_a_tls_hop_in_a_proxy_header() {
    let dir = tempfile::tempdir().unwrap();
    let ca = certs::ca(dir.path(), "test-ca");
    let leaf = certs::signed(dir.path(), "back", "back.test", &ca);
    let b = backends("chain", 1);
    let back = Proxy::start(&format!(
        "listeners:\n  web:\n    listen: \"{{HTTP}}\"\n    proxy_protocol: true\n    tls: {{ cert: \"{}\", key: \"{}\" }}\n    routes: [{{ upstream: u }}]\nupstreams:\n  u: {{ backends: {} }}\n",
        leaf.cert.display(),
        leaf.key.display(),
        backend_list(&b)
    ));
    for protocol in ["http1", "h2"] {
        let front = Proxy::start(&format!(
            "listeners:\n  web:\n    listen: \"{{HTTP}}\"\n    proxy_protocol: true\n    routes: [{{ upstream: u }}]\nupstreams:\n  u:\n    retries: 0\n    protocol: {protocol}\n    send_proxy_protocol: v2\n    tls: {{ sni: back.test, ca_file: \"{}\" }}\n    backends: [{{ addr: \"{}\" }}]\n",
            ca.cert.display(),
            back.http
        ));
        for client in ["203.0.113.50", "203.0.113.51"] {
            let mut s = TcpStream::connect(front.http).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let line = format!("PROXY TCP4 {client} 192.0.2.1 40000 80\r\n");
            s.write_all(line.as_bytes()).unwrap();
            let mut r = BufReader::new(s);
            for _ in 0..2 {
                r.get_mut()
                    .write_all(b"GET /chain HTTP/1.1\r\nHost: chain.test\r\n\r\n")
                    .unwrap();
                let resp = read_response(&mut r).expect("a response");
                assert_eq!(
                    resp.status,
                    200,
                    "{protocol}: {}\n{}",
                    front.log(),
                    back.log()
                );
                assert_eq!(
                    resp.seen_header("x-forwarded-for"),
                    Some(format!("{client}, {client}").as_str()),
                    "{protocol}"
                );
            }
        }
    }
}
