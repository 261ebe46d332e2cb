//! Running a case through one listener: the client's acts on a fresh
//! connection, and whether that connection carries a next request.

use std::io::Write;
use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant};

use crate::cases::{Act, Case, Split, PAUSE_MS};
use crate::client::{Client, Fill};
use crate::compare::Obs;
use crate::wire::{describe_head, find, show, status_of};

/// The longest a client waits for one response.
const RESPONSE_WAIT: Duration = Duration::from_secs(5);
/// The longest a client waits for the answer to the follow-up request that
/// tells whether its connection is still usable.
const PROBE_WAIT: Duration = Duration::from_millis(1500);

/// Runs `case` (number `n`) once on a fresh connection to `addr`.
pub fn run(addr: SocketAddr, n: usize, case: &Case) -> Obs {
    let path = format!("/case/{n}");
    let sub = |bytes: &[u8]| -> Vec<u8> {
        String::from_utf8_lossy(bytes)
            .replace("{P}", &path)
            .into_bytes()
    };
    let mut c = Client::connect(addr, RESPONSE_WAIT);
    let mut obs = Obs::default();
    let mut interim = Vec::new();
    let mut tunnelled = false;
    for act in &case.acts {
        match act {
            Act::Write(bytes) => {
                // A write the proxy refuses shows in what is read next.
                let _ = c.s.write_all(&sub(bytes));
            }
            Act::Sleep(ms) => thread::sleep(Duration::from_millis(*ms)),
            Act::AwaitInterim(ms) => {
                let deadline = Instant::now() + Duration::from_millis(*ms);
                loop {
                    if let Some(i) = find(&c.buf[c.pos..], b"\r\n\r\n") {
                        let head: Vec<String> = String::from_utf8_lossy(&c.buf[c.pos..c.pos + i])
                            .split("\r\n")
                            .map(str::to_string)
                            .collect();
                        if status_of(&head[0]).is_ok_and(|s| (100..200).contains(&s) && s != 101) {
                            c.pos += i + 4;
                            interim.push(describe_head(&head));
                        }
                        break;
                    }
                    if !matches!(c.fill(deadline), Fill::Data) {
                        break;
                    }
                }
            }
            Act::Read | Act::ReadHead => {
                let r = c.response(matches!(act, Act::ReadHead), std::mem::take(&mut interim));
                let failed = r.is_err();
                obs.responses.push(r);
                if failed {
                    break;
                }
            }
            Act::Tunnel(bytes) => {
                tunnelled = true;
                let switched = matches!(obs.responses.last(), Some(Ok(r)) if r.status == 101);
                if !switched {
                    obs.tunnel = Some("(not switched)".into());
                    continue;
                }
                let _ = c.s.write_all(bytes);
                let mut wanted = b"echo:".to_vec();
                wanted.extend_from_slice(bytes);
                let deadline = Instant::now() + PROBE_WAIT;
                while find(&c.buf[c.pos..], &wanted).is_none() {
                    if !matches!(c.fill(deadline), Fill::Data) {
                        break;
                    }
                }
                obs.tunnel = Some(show(&c.buf[c.pos..]));
                c.pos = c.buf.len();
            }
        }
    }
    if let (Some(split), Some(Ok(r))) = (case.timing, obs.responses.first()) {
        let first = match split {
            Split::Head => r.head_end.checked_sub(1),
            Split::Body(k) => k.checked_sub(1).and_then(|i| r.raw_offset(i)),
        };
        let last = r.body.len().checked_sub(1).and_then(|i| r.raw_offset(i));
        if let (Some(a), Some(b)) = (
            first.and_then(|o| c.arrival(o)),
            last.and_then(|o| c.arrival(o)),
        ) {
            let gap = b.duration_since(a);
            let streamed = gap >= Duration::from_millis(PAUSE_MS / 2);
            obs.streamed = Some((
                streamed,
                format!("the first part came {} ms before the rest", gap.as_millis()),
            ));
        }
    }
    obs.after = if tunnelled {
        "tunnel".into()
    } else {
        after(&mut c, &path)
    };
    obs
}

/// Whether the connection carries a next request.
fn after(c: &mut Client, path: &str) -> String {
    let mut text = String::new();
    if c.avail() > 0 {
        text.push_str(&format!(
            "unexpected bytes after the response: {}; ",
            show(&c.buf[c.pos..])
        ));
        c.pos = c.buf.len();
    }
    if c.closed {
        text.push_str("closed");
        return text;
    }
    let probe = format!("GET {path}/probe HTTP/1.1\r\nHost: a\r\n\r\n");
    if c.s.write_all(probe.as_bytes()).is_err() {
        text.push_str("closed");
        return text;
    }
    let deadline = Instant::now() + PROBE_WAIT;
    let got = loop {
        if find(&c.buf[c.pos..], b"\r\n\r\n").is_some() {
            break c.response(false, Vec::new());
        }
        match c.fill(deadline) {
            Fill::Data => {}
            Fill::Closed if c.avail() == 0 => break Err("closed".into()),
            Fill::Timeout if c.avail() == 0 => break Err("timeout".into()),
            _ => break c.response(false, Vec::new()),
        }
    };
    match got {
        Ok(r) if r.status == 200 && r.body == b"probe" => text.push_str("open"),
        Ok(r) => text.push_str(&format!(
            "next request answered {} {}",
            r.status_line,
            show(&r.body)
        )),
        Err(e) if e == "closed" => text.push_str("closed"),
        Err(e) if e == "timeout" => text.push_str(&format!(
            "open, but a next request got no answer within {} ms",
            PROBE_WAIT.as_millis()
        )),
        Err(e) => text.push_str(&format!("next request: {e}")),
    }
    text
}
