//! HTTP/2 runs compared with HTTP/1 runs and with each other: each run as the
//! same list of aspects, normalised so that what HTTP/2 cannot say the same
//! way as HTTP/1.1 (reason phrases, field-name case, connection-level
//! fields, how a cut shows) is equal when it means the same.
//!
//! What is equal, HTTP/2 against HTTP/1.1:
//! - `status`: the status code (HTTP/2 has no reason phrase or version).
//!   No response at all: `cut short` (HTTP/1 closed the connection, HTTP/2
//!   reset the stream or ended the connection) or `stalled`.
//! - `interim`: each 1xx head's code and fields.
//! - `headers`: the response fields, names lower-case (HTTP/2 sends them so),
//!   sorted by name (same-name values in their order), less `Connection`,
//!   `Keep-Alive`, `Proxy-Connection`, `Transfer-Encoding` and `Upgrade`
//!   (connection-level; an HTTP/2 response never has them). `Content-Length`
//!   is compared: an HTTP/2 response may carry it and it must agree. `Date`
//!   as [`compare`](crate::compare) shows it (the backend's, or one of its own).
//! - `body`: the bytes; `end`: `complete`, `cut short` (HTTP/1: the
//!   connection closed before the framing ended; HTTP/2: the stream was
//!   reset or the connection ended) or `stalled`.
//! - `trailers`: names lower-case, sorted.
//! - `timing`: whether the first part of a paused response came first.
//! - `backend`: what the backend got, as
//!   [`describe_request`](crate::wire::describe_request) has it, less the
//!   test's [`RUN_FIELD`](crate::h2client::RUN_FIELD), with field names
//!   lower-case: the HTTP/2 client sends lower-case names, which the proxy
//!   may pass on as they came. The request line, the values (`Host` from
//!   `:authority` included) and the body description (framing included: a
//!   body sent without `Content-Length` reaches the backend chunked, as a
//!   chunked HTTP/1.1 body does) must be equal.
//!
//! Two HTTP/2 runs (`h2` and `h2pingora`) are compared on the same aspects
//! with more detail: how a stream ended (the reset's error code) and
//! `connection`, whether the connection carried a next stream.

use crate::cases::{self, Expect};
use crate::compare::{normal_value, timing_text, Obs};
use crate::h2client::{H2Obs, H2Resp, Interim, Stop};
use crate::wire::{show, sorted, status_of};

/// Fields that belong to an HTTP/1 connection, never in an HTTP/2 message.
const CONNECTION_LEVEL: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
];

/// The aspects of an HTTP/2 run and an HTTP/1 run of one case, as
/// (aspect, the HTTP/2 run's text, the HTTP/1 run's).
pub fn h2_vs_h1(h2: &H2Obs, h1: &Obs) -> Vec<(&'static str, String, String)> {
    let both = h2.response.is_ok() && matches!(h1.responses.first(), Some(Ok(_)));
    pair(h2_aspects(h2, false, both), h1_aspects(h1, both))
}

/// The aspects of two HTTP/2 runs of one case.
pub fn h2_vs_h2(a: &H2Obs, b: &H2Obs) -> Vec<(&'static str, String, String)> {
    let both = a.response.is_ok() && b.response.is_ok();
    pair(h2_aspects(a, true, both), h2_aspects(b, true, both))
}

fn pair(
    a: Vec<(&'static str, String)>,
    b: Vec<(&'static str, String)>,
) -> Vec<(&'static str, String, String)> {
    a.into_iter()
        .zip(b)
        .map(|((aspect, x), (other, y))| {
            debug_assert_eq!(aspect, other);
            (aspect, x, y)
        })
        .collect()
}

/// A header list as compared: lower-case names, sorted, less the
/// connection-level fields, `Date` as whose it is.
fn field_lines(fields: &[(String, String)]) -> String {
    let lower: Vec<(String, String)> = fields
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
        .filter(|(n, _)| !CONNECTION_LEVEL.contains(&n.as_str()))
        .collect();
    sorted(&lower)
        .iter()
        .map(|(n, v)| format!("{n}: {}", normal_value(n, v)))
        .collect::<Vec<_>>()
        .join("\n")
}

fn interim_lines(interim: &[Interim]) -> String {
    interim
        .iter()
        .map(|(code, fields)| format!("{code} {{{}}}", field_lines(fields).replace('\n', "; ")))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The backend's records with lower-case field names.
fn backend_lines(records: &[String]) -> String {
    records
        .iter()
        .map(|r| {
            r.lines()
                .map(
                    |l| match l.strip_prefix("  ").and_then(|f| f.split_once(": ")) {
                        Some((name, rest)) if name != "body" => {
                            format!("  {}: {rest}", name.to_ascii_lowercase())
                        }
                        _ => l.to_string(),
                    },
                )
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The aspects both protocols share; `both`: whether both runs got a
/// response (if not, only `status` tells, as in `compare`).
fn shared(
    status: String,
    r: Option<Response>,
    timing: &Option<(bool, String)>,
    backend: &[String],
) -> Vec<(&'static str, String)> {
    let r = r.unwrap_or_default();
    vec![
        ("status", status),
        ("interim", r.interim),
        ("headers", r.headers),
        ("body", r.body),
        ("end", r.end),
        ("trailers", r.trailers),
        ("timing", timing_text(timing)),
        ("backend", backend_lines(backend)),
    ]
}

/// A response's aspects as text.
#[derive(Default)]
struct Response {
    interim: String,
    headers: String,
    body: String,
    end: String,
    trailers: String,
}

fn h2_aspects(o: &H2Obs, detailed: bool, both: bool) -> Vec<(&'static str, String)> {
    let stop = |s: &Stop| {
        if detailed {
            format!("{} ({})", s.kind, s.detail)
        } else {
            s.kind.to_string()
        }
    };
    let (status, r) = match &o.response {
        Ok(r) => (r.status.to_string(), Some(h2_response(r, &stop))),
        Err((s, interim)) => {
            let mut text = format!("(no response: {})", stop(s));
            if !interim.is_empty() {
                text.push_str(&format!(" after {}", interim_lines(interim)));
            }
            (text, None)
        }
    };
    let mut aspects = shared(status, r.filter(|_| both), &o.streamed, &o.backend);
    if detailed {
        aspects.push(("connection", o.after.clone()));
    }
    aspects
}

fn h2_response(r: &H2Resp, stop: &dyn Fn(&Stop) -> String) -> Response {
    Response {
        interim: interim_lines(&r.interim),
        headers: field_lines(&r.headers),
        body: show(&r.body),
        end: r.stop.as_ref().map_or("complete".into(), stop),
        trailers: field_lines(&r.trailers),
    }
}

/// What an HTTP/1 run's end says, as [`Stop::kind`] says it.
fn h1_end(end: &str) -> String {
    if end == "complete" || end.starts_with("cut short") || end.starts_with("stalled") {
        end.split(" (").next().unwrap_or(end).to_string()
    } else {
        // The client could not read the proxy's framing.
        format!("broken framing: {end}")
    }
}

fn h1_aspects(o: &Obs, both: bool) -> Vec<(&'static str, String)> {
    let (status, r) = match o.responses.first() {
        Some(Ok(r)) => (
            r.status.to_string(),
            Some(Response {
                interim: r
                    .interim
                    .iter()
                    .map(|i| h1_interim(i))
                    .collect::<Vec<_>>()
                    .join("\n"),
                headers: field_lines(&r.headers),
                body: show(&r.body),
                end: h1_end(&r.end),
                trailers: field_lines(&r.trailers),
            }),
        ),
        Some(Err(e)) => {
            let kind = if e.contains("timed out") {
                "stalled"
            } else if e.contains("closed") {
                "cut short"
            } else {
                "garbled"
            };
            (format!("(no response: {kind})"), None)
        }
        None => ("(no response: nothing read)".into(), None),
    };
    shared(status, r.filter(|_| both), &o.streamed, &o.backend)
}

/// An interim head as `run` describes it on HTTP/1 (`HTTP/1.1 103 Early
/// Hints {Link: "..."; ...}`) in [`interim_lines`]'s form.
fn h1_interim(text: &str) -> String {
    let (line, fields) = text.split_once(" {").unwrap_or((text, "}"));
    let code = status_of(line).map_or_else(|e| e, |c| c.to_string());
    let fields = fields.strip_suffix('}').unwrap_or(fields);
    // Fields are `Name: "value"` joined by "; "; a value is quoted with its
    // own quotes escaped, so a field ends at the first unescaped quote after
    // its opening one.
    let mut parsed = Vec::new();
    let mut rest = fields;
    while let Some((name, after)) = rest.split_once(": \"") {
        let mut end = None;
        let mut escaped = false;
        for (i, c) in after.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => {
                    end = Some(i);
                    break;
                }
                _ => {}
            }
        }
        let Some(end) = end else { break };
        parsed.push((name.to_string(), after[..end].to_string()));
        rest = after[end + 1..].trim_start_matches("; ");
    }
    // The values are shown already; show them again as `field_lines` would
    // show a raw value: unescape the simple escapes first.
    let raw: Vec<(String, String)> = parsed
        .into_iter()
        .map(|(n, v)| (n, v.replace("\\\"", "\"").replace("\\\\", "\\")))
        .collect();
    format!("{code} {{{}}}", field_lines(&raw).replace('\n', "; "))
}

/// Whether an HTTP/2 run meets `e`; None when `e` is about the HTTP/1 wire
/// (a connection kept for a next request, chunked framing).
pub fn check_h2(e: Expect, o: &H2Obs) -> Option<Result<(), String>> {
    Some(match e {
        Expect::Status(s) => match &o.response {
            Ok(r) if r.status == s => Ok(()),
            Ok(r) => Err(format!("status {s} expected, got {}", r.status)),
            Err((stop, _)) => Err(format!(
                "status {s} expected, got no response: {} ({})",
                stop.kind, stop.detail
            )),
        },
        Expect::NothingForwarded => cases::nothing_forwarded(&o.backend),
        Expect::Streamed => cases::streamed(&o.streamed),
        Expect::KeepsConnection | Expect::NotChunked => return None,
    })
}
