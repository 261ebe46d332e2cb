//! Comparing two runs: what one run showed ([`Obs`]), each aspect of it as
//! normalised text, and a two-sided diff. Only std: the `engines` fuzz
//! target includes this file too.

use crate::client::Resp;
use crate::wire::{field, show, show_field, sorted, Record};

/// The backend's `Date`, to tell it from one the proxy made.
pub const BACKEND_DATE: &str = "Sun, 06 Nov 1994 08:49:37 GMT";

/// Everything one run of a case showed.
#[derive(Default)]
pub struct Obs {
    pub responses: Vec<Result<Resp, String>>,
    pub tunnel: Option<String>,
    /// What became of the connection after the last response.
    pub after: String,
    /// Whether the first part of a paused response came before the pause
    /// ended, and the measured gap.
    pub streamed: Option<(bool, String)>,
    /// The requests the backend received, as
    /// [`describe_request`](crate::wire::describe_request) describes them.
    pub backend: Vec<Record>,
}

/// Every aspect of two runs of one case: (aspect, the first run's text, the
/// second's); the runs agree when the texts of every aspect are equal.
pub fn compared(a: &Obs, b: &Obs) -> Vec<(&'static str, String, String)> {
    let longest = a.responses.len().max(b.responses.len());
    let both: Vec<bool> = (0..longest)
        .map(|i| {
            [a, b]
                .iter()
                .all(|o| matches!(o.responses.get(i), Some(Ok(_))))
        })
        .collect();
    aspects(a, &both)
        .into_iter()
        .zip(aspects(b, &both))
        .map(|((aspect, x), (_, y))| (aspect, x, y))
        .collect()
}

/// A header value as compared: `Date` values say whose date they are.
pub fn normal_value(name: &str, value: &str) -> String {
    if name.eq_ignore_ascii_case("date") {
        if value == BACKEND_DATE {
            "(the backend's)".into()
        } else {
            "(a date of its own)".into()
        }
    } else {
        show_field(name, value.as_bytes())
    }
}

/// Each aspect of a run as text; runs agree when all texts are equal.
/// Responses missing on either side show in `status` only: `both[i]` says
/// whether both runs got response `i`.
fn aspects(o: &Obs, both: &[bool]) -> Vec<(&'static str, String)> {
    // One line per response, or per header; `#2 ` marks the second response.
    let each = |f: &dyn Fn(&Resp) -> String| -> String {
        let mut out = Vec::new();
        for (i, (r, both_got)) in o.responses.iter().zip(both).enumerate() {
            let Some(r) = r.as_ref().ok().filter(|_| *both_got) else {
                continue;
            };
            let text = f(r);
            if both.len() < 2 {
                out.push(text);
            } else if text.is_empty() {
                out.push(format!("#{}", i + 1));
            } else {
                out.extend(text.lines().map(|l| format!("#{} {l}", i + 1)));
            }
        }
        out.join("\n")
    };
    let framing_headers = ["content-length", "transfer-encoding", "connection"];
    let status = o
        .responses
        .iter()
        .map(|r| match r {
            Ok(r) => r.status_line.clone(),
            Err(e) => format!("(no response: {e})"),
        })
        .collect::<Vec<_>>()
        .join("\n");
    vec![
        ("status", status),
        ("interim", each(&|r| format!("{:?}", r.interim))),
        (
            "headers",
            each(&|r| {
                sorted(&r.headers)
                    .iter()
                    .filter(|(n, _)| !framing_headers.contains(&n.to_ascii_lowercase().as_str()))
                    .map(|(n, v)| format!("{n}: {}", normal_value(n, v)))
                    .collect::<Vec<_>>()
                    .join("\n")
            }),
        ),
        (
            "framing",
            each(&|r| {
                let length = match field(&r.headers, "content-length") {
                    Some(l) if r.framing != "length" => format!(", Content-Length: {l}"),
                    _ => String::new(),
                };
                format!("{}{length}, {}", r.framing, r.end)
            }),
        ),
        ("body", each(&|r| show(&r.body))),
        (
            "trailers",
            each(&|r| {
                sorted(&r.trailers)
                    .iter()
                    .map(|(n, v)| format!("{n}: {v}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            }),
        ),
        (
            "connection",
            format!(
                "said {}; {}",
                o.responses
                    .iter()
                    .map(|r| match r {
                        Ok(r) => field(&r.headers, "connection")
                            .unwrap_or("nothing")
                            .to_string(),
                        Err(_) => "-".into(),
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
                o.after
            ),
        ),
        ("tunnel", o.tunnel.clone().unwrap_or_default()),
        ("timing", timing_text(&o.streamed)),
        ("backend", o.backend.join("\n")),
    ]
}

/// Whether the first part of a paused response came first, as compared.
pub fn timing_text(streamed: &Option<(bool, String)>) -> String {
    match streamed {
        Some((true, _)) => "the first part came before the pause ended".into(),
        Some((false, _)) => "the first part was held back until the rest came".into(),
        None => String::new(),
    }
}

/// A two-sided text diff of a forwarder run and a pingora run.
pub fn diff(a: &str, b: &str) -> String {
    diff_between(a, b, ["forwarder", "pingora"])
}

/// A two-sided text diff, line by line, the sides named by `names`.
pub fn diff_between(a: &str, b: &str, names: [&str; 2]) -> String {
    let width = names[0].len().max(names[1].len());
    // `name:` and `name only:`, padded after the colon to line the values up.
    let label =
        |n: &str, tail: &str| format!("{:w$}", format!("{n}{tail}:"), w = width + tail.len() + 1);
    let [na, nb] = names.map(|n| label(n, ""));
    let [oa, ob] = names.map(|n| label(n, " only"));
    if !a.contains('\n') && !b.contains('\n') {
        return format!("      {na} {a}\n      {nb} {b}\n");
    }
    let (la, lb): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    let mut out = String::new();
    for l in &la {
        if !lb.contains(l) {
            out.push_str(&format!("      {oa} {l}\n"));
        }
    }
    for l in &lb {
        if !la.contains(l) {
            out.push_str(&format!("      {ob} {l}\n"));
        }
    }
    if out.is_empty() {
        out = format!("      (same lines, another order)\n      {na} {a:?}\n      {nb} {b:?}\n");
    }
    out
}
