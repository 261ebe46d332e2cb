//! HTTP/1 message text as both ends of the differential test read it: lines,
//! header fields, bodies by their framing, and bytes shown as text. Only
//! std: the `engines` fuzz target includes this file too.

use std::io::{BufRead, Read};

/// A request as the backend received it, described for comparison
/// ([`describe_request`]).
pub type Record = String;

/// Where `needle` first occurs in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The status code of a status line.
pub fn status_of(line: &str) -> Result<u16, String> {
    line.split(' ')
        .nth(1)
        .filter(|_| line.starts_with("HTTP/"))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("not a status line: {}", show(line.as_bytes())))
}

/// A head (status line and fields, sorted) on one line.
pub fn describe_head(lines: &[String]) -> String {
    let fields: Vec<String> = sorted(&header_fields(&lines[1..]))
        .iter()
        .map(|(n, v)| format!("{n}: {}", show(v.as_bytes())))
        .collect();
    format!("{} {{{}}}", lines[0], fields.join("; "))
}

/// Headers sorted by name (case-blind), same-name values in their order.
pub fn sorted(headers: &[(String, String)]) -> Vec<(String, String)> {
    let mut out = headers.to_vec();
    out.sort_by_key(|h| h.0.to_ascii_lowercase());
    out
}

/// The request id header of the test's config (`server.request_id`).
pub const REQUEST_ID: &str = "x-diff-id";

/// A header value as compared: an id switchyard generated (a UUID) is
/// different in every run, so it shows as such.
pub fn show_field(name: &str, value: &[u8]) -> String {
    let uuid = value.len() == 36
        && value.iter().enumerate().all(|(i, b)| {
            matches!(i, 8 | 13 | 18 | 23) == (*b == b'-') && (*b == b'-' || b.is_ascii_hexdigit())
        });
    if name.eq_ignore_ascii_case(REQUEST_ID) && uuid {
        return "(an id of its own)".into();
    }
    show(value)
}

/// Bytes as escaped text; long ones cut, with their length and a hash.
pub fn show(b: &[u8]) -> String {
    if b.len() <= 100 {
        return format!("\"{}\"", b.escape_ascii());
    }
    let hash = b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &x| {
        (h ^ u64::from(x)).wrapping_mul(0x100_0000_01b3)
    });
    format!(
        "\"{}\"... ({} bytes, fnv {hash:016x})",
        b[..40].escape_ascii(),
        b.len()
    )
}

/// (name as sent, value) of header lines.
pub fn header_fields(lines: &[String]) -> Vec<(String, String)> {
    lines
        .iter()
        .map(|l| match l.split_once(':') {
            Some((n, v)) => (n.trim().to_string(), v.trim().to_string()),
            None => ("(no colon)".to_string(), l.clone()),
        })
        .collect()
}

/// The first value of field `name` (case-blind).
pub fn field<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// A head's lines (without CRLF), the request line first.
pub fn read_lines<R: BufRead>(r: &mut R) -> Option<Vec<String>> {
    let mut lines = Vec::new();
    let mut total = 0;
    loop {
        let line = crlf_line(r).ok()?;
        total += line.len() + 2;
        if total > 256 * 1024 {
            return None;
        }
        if line.is_empty() {
            return (!lines.is_empty()).then_some(lines);
        }
        lines.push(String::from_utf8_lossy(&line).into_owned());
    }
}

/// One line up to LF, without its line end.
pub fn crlf_line<R: BufRead>(r: &mut R) -> Result<Vec<u8>, String> {
    let mut line = Vec::new();
    match r.take(128 * 1024).read_until(b'\n', &mut line) {
        Ok(0) => Err("closed".into()),
        Ok(_) if line.last() != Some(&b'\n') => Err("closed mid-line".into()),
        Ok(_) => {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            Ok(line)
        }
        Err(e) => Err(format!("{:?}", e.kind())),
    }
}

/// Reads a request body; its description, and whether it arrived whole.
pub fn read_body<R: BufRead>(r: &mut R, headers: &[(String, String)]) -> (String, bool) {
    let chunked = field(headers, "transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        let (mut body, mut trailers) = (Vec::new(), Vec::new());
        let result = read_chunks(r, &mut body, &mut trailers);
        let mut text = format!("chunked {}", show(&body));
        if !trailers.is_empty() {
            text.push_str(&format!(", trailers [{}]", trailers.join("; ")));
        }
        if let Err(e) = &result {
            text.push_str(&format!(", broken: {e}"));
        }
        return (text, result.is_ok());
    }
    let Some(len) = field(headers, "content-length") else {
        return ("none".into(), true);
    };
    let Ok(len) = len.parse::<usize>() else {
        return (format!("bad length {len:?}"), false);
    };
    let mut body = Vec::new();
    let got = r.take(len as u64).read_to_end(&mut body);
    let mut text = format!("length {}", show(&body));
    let whole = got.is_ok() && body.len() == len;
    if !whole {
        text.push_str(&format!(", cut short at {} of {len}", body.len()));
    }
    (text, whole)
}

/// A chunked body, decoded, and its trailer lines.
pub fn read_chunks<R: BufRead>(
    r: &mut R,
    body: &mut Vec<u8>,
    trailers: &mut Vec<String>,
) -> Result<(), String> {
    for _ in 0..100_000 {
        let line = crlf_line(r)?;
        let text = String::from_utf8_lossy(&line);
        let size = text.split(';').next().unwrap_or("").trim();
        let n = usize::from_str_radix(size, 16)
            .ok()
            .filter(|n| *n <= 16 << 20)
            .ok_or_else(|| format!("bad chunk size line {}", show(&line)))?;
        if n == 0 {
            loop {
                let line = crlf_line(r)?;
                if line.is_empty() {
                    return Ok(());
                }
                trailers.push(String::from_utf8_lossy(&line).into_owned());
            }
        }
        let mut data = vec![0u8; n + 2];
        r.read_exact(&mut data)
            .map_err(|e| format!("{:?}", e.kind()))?;
        if &data[n..] != b"\r\n" {
            return Err("chunk data not followed by CRLF".into());
        }
        body.extend_from_slice(&data[..n]);
    }
    Err("too many chunks".into())
}

/// A request as compared: its request line, its fields sorted by name, and
/// its body as [`read_body`] described it.
pub fn describe_request(lines: &[String], headers: &[(String, String)], body: &str) -> Record {
    let mut text = format!("{}\n", lines[0]);
    for (n, v) in sorted(headers) {
        text.push_str(&format!("  {n}: {}\n", show_field(&n, v.as_bytes())));
    }
    text.push_str(&format!("  body: {body}"));
    text
}
