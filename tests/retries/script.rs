//! Scripted backends for the retry tests: each answers every request the
//! same way, counts the requests it read, and says who it is.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::common::free_port;

/// What a scripted backend does with each request it read.
#[derive(Clone, Copy)]
pub enum Act {
    /// 200 with `good <name> len=<body bytes read>`.
    Good,
    /// This status, with `Retry-After` when given.
    Status(u16, Option<&'static str>),
    /// Closes the connection without a word.
    Reset,
    /// Says nothing for this long, then closes.
    Hang(Duration),
    /// A 200 head announcing 100 bytes, 10 of them, then the close.
    Partial,
}

pub struct Backend {
    pub addr: SocketAddr,
    hits: Arc<AtomicUsize>,
}

impl Backend {
    pub fn start(name: &'static str, act: Act) -> Backend {
        let listener = TcpListener::bind(("127.0.0.1", free_port())).unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&hits);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                let counted = Arc::clone(&counted);
                std::thread::spawn(move || serve(conn, name, act, &counted));
            }
        });
        Backend { addr, hits }
    }

    /// Requests read so far.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// `{ addr: ... }` for the config.
    pub fn yaml(&self) -> String {
        format!("{{ addr: \"{}\" }}", self.addr)
    }
}

/// An address nothing listens on.
pub fn dead() -> String {
    format!("{{ addr: \"127.0.0.1:{}\" }}", free_port())
}

fn serve(mut conn: TcpStream, name: &str, act: Act, hits: &AtomicUsize) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    loop {
        let Some(body_len) = read_request(&mut conn) else {
            return;
        };
        hits.fetch_add(1, Ordering::SeqCst);
        let reply = match act {
            Act::Good => {
                let body = format!("good {name} len={body_len}");
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )
            }
            Act::Status(code, retry_after) => {
                let extra = retry_after.map_or(String::new(), |v| format!("Retry-After: {v}\r\n"));
                let body = format!("{code} from {name}");
                format!(
                    "HTTP/1.1 {code} Whatever\r\n{extra}Content-Length: {}\r\n\r\n{body}",
                    body.len()
                )
            }
            Act::Reset => return,
            Act::Hang(d) => {
                std::thread::sleep(d);
                return;
            }
            Act::Partial => {
                let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789");
                std::thread::sleep(Duration::from_millis(100));
                return;
            }
        };
        if conn.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

/// Reads one request (head and Content-Length body); its body's length.
fn read_request(conn: &mut TcpStream) -> Option<usize> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if conn.read(&mut byte).ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let len = text
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0usize);
    let mut body = vec![0; len];
    conn.read_exact(&mut body).ok()?;
    Some(len)
}
