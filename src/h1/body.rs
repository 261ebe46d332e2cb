//! Bodies, streamed: bytes are passed on as they arrive, never gathered
//! whole. Whatever the receiver buffers is flushed whenever the next read
//! from the sender would wait, so a paused response (server-sent events, a
//! token stream) reaches the client as it is produced, while a body that
//! arrives at once still leaves in as few writes as it fits. A chunked body is copied verbatim (its framing included) while
//! [`Chunked`] follows the framing to find where it ends.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::head::Framing;
use super::within::{within, within_flushing};

/// The most one read takes.
pub const CHUNK: usize = 16 * 1024;

/// Why a body could not be passed on.
#[derive(Debug)]
pub enum Broken {
    /// The sender failed: error, early close, a gap longer than the timeout,
    /// or (chunked) bad framing.
    From,
    /// The receiver failed.
    To,
}

/// How a body is written out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// As it was received, framing included.
    AsIs,
    /// A close-delimited body, re-framed as chunks (ended by the last chunk
    /// when the sender closes), so the client's connection outlives it:
    /// what Pingora's path does for HTTP/1.1 clients too.
    Chunked,
    /// A chunked body's data only, its framing (and trailers) left out: for
    /// an HTTP/2 stream, which frames the data itself.
    Dechunked,
}

/// How long a relay waits on each side.
#[derive(Debug, Clone, Copy)]
pub struct Gaps {
    /// The longest wait for the next bytes from the sender.
    pub read: Duration,
    /// The longest wait for the receiver to take a write (a client that
    /// stops reading, or withholds its HTTP/2 window, is given up on).
    pub write: Duration,
}

impl Gaps {
    pub fn both(d: Duration) -> Self {
        Self { read: d, write: d }
    }
}

/// The most trailer bytes kept from a de-chunked body.
const MAX_TRAILERS: usize = 64 * 1024;

/// Copies the rest of a body framed by `framing` from `from` to `to`. The
/// body's first bytes may already have been read: `pending` (which may also
/// hold bytes past the body, a pipelined follow-up; those are returned).
/// Each read and each write waits at most as long as `gaps` says. A chunked
/// body sent [`Output::Dechunked`] leaves its trailer lines (CRLF-ended) in
/// `trailers`, for the receiver to send its own way.
pub async fn relay<R, W>(
    from: &mut R,
    to: &mut W,
    framing: Framing,
    output: Output,
    pending: &[u8],
    gaps: Gaps,
    trailers: &mut Vec<u8>,
) -> Result<Vec<u8>, Broken>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut chunked = Chunked::default();
    let mut left = match framing {
        Framing::Empty => return Ok(pending.to_vec()),
        Framing::Length(n) => n,
        Framing::Chunked | Framing::UntilClose => u64::MAX,
    };
    let mut buf = Vec::new();
    let mut data: &[u8] = pending;
    let mut pieces = Vec::new();
    loop {
        // Pass on what belongs to the body; keep anything after it.
        let (take, done) = match framing {
            Framing::Chunked if output == Output::Dechunked => {
                pieces.clear();
                let found =
                    chunked.advance_with(data, &mut |r| pieces.push(r), &mut |b| trailers.push(b));
                if trailers.len() > MAX_TRAILERS {
                    return Err(Broken::From);
                }
                let (take, done) = match found {
                    Ok(Some(end)) => (end, true),
                    Ok(None) => (data.len(), false),
                    Err(BadChunk) => return Err(Broken::From),
                };
                for piece in pieces.drain(..) {
                    sent(within(gaps.write, to.write_all(&data[piece])).await)?;
                }
                if done {
                    return Ok(data[take..].to_vec());
                }
                (0, false)
            }
            Framing::Chunked => match chunked.advance(data) {
                Ok(Some(end)) => (end, true),
                Ok(None) => (data.len(), false),
                Err(BadChunk) => return Err(Broken::From),
            },
            _ => {
                let n = (data.len() as u64).min(left) as usize;
                left -= n as u64;
                (n, left == 0)
            }
        };
        if take > 0 {
            sent(within(gaps.write, write_out(to, output, &data[..take])).await)?;
        }
        if done {
            return Ok(data[take..].to_vec());
        }
        // A length-framed body is read no further than its end: what
        // follows belongs to the next message.
        let want = match framing {
            Framing::Length(_) => left.min(CHUNK as u64) as usize,
            _ => CHUNK,
        };
        // Into spare capacity: nothing is zeroed first.
        buf.clear();
        buf.reserve(want);
        let mut limited = (&mut *from).take(want as u64);
        let read = limited.read_buf(&mut buf);
        let n = match within_flushing(gaps, read, &mut *to).await {
            Ok(Some(Ok(n))) => n,
            Ok(_) => return Err(Broken::From),
            Err(_) => return Err(Broken::To),
        };
        if n == 0 {
            return match (framing, output) {
                (Framing::UntilClose, Output::Chunked) => {
                    sent(within(gaps.write, to.write_all(b"0\r\n\r\n")).await)?;
                    Ok(Vec::new())
                }
                (Framing::UntilClose, _) => Ok(Vec::new()),
                _ => Err(Broken::From),
            };
        }
        data = &buf[..];
    }
}

/// A write that failed or took longer than its gap broke the receiver.
fn sent(written: Option<std::io::Result<()>>) -> Result<(), Broken> {
    match written {
        Some(Ok(())) => Ok(()),
        _ => Err(Broken::To),
    }
}

async fn write_out<W: AsyncWrite + Unpin>(
    to: &mut W,
    output: Output,
    data: &[u8],
) -> std::io::Result<()> {
    if output == Output::Chunked {
        let mut size = [0u8; 18];
        let n = hex_line(data.len(), &mut size);
        to.write_all(&size[..n]).await?;
        to.write_all(data).await?;
        return to.write_all(b"\r\n").await;
    }
    to.write_all(data).await
}

/// `len` in hex and CRLF, into `out`; how many bytes.
fn hex_line(len: usize, out: &mut [u8; 18]) -> usize {
    let digits = (usize::BITS - len.leading_zeros()).div_ceil(4).max(1) as usize;
    for (i, digit) in out[..digits].iter_mut().enumerate() {
        let nibble = (len >> (4 * (digits - 1 - i))) & 0xf;
        *digit = b"0123456789abcdef"[nibble];
    }
    out[digits] = b'\r';
    out[digits + 1] = b'\n';
    digits + 2
}

/// A chunked body's framing is broken.
#[derive(Debug, PartialEq, Eq)]
pub struct BadChunk;

/// Where a chunked body's framing stands (RFC 9112 §7.1).
#[derive(Debug, Default)]
pub struct Chunked {
    state: State,
    size: u64,
    digits: u8,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading the hex chunk size.
    #[default]
    Size,
    /// After the size: an extension, up to the line's end.
    Extension,
    SizeLf,
    Data,
    DataCr,
    DataLf,
    /// At the start of a trailer line (or the final blank line).
    TrailerStart,
    /// Inside a trailer line.
    Trailer,
    /// After the CR of a blank line: the LF ends the body.
    EndLf,
    /// After the CR of a trailer line.
    TrailerLf,
}

impl Chunked {
    /// Follows `data`; `Ok(Some(n))` when the body ends after its first `n`
    /// bytes, `Ok(None)` when it needs more, `Err` on bad framing.
    pub fn advance(&mut self, data: &[u8]) -> Result<Option<usize>, BadChunk> {
        self.advance_with(data, &mut |_| {}, &mut |_| {})
    }

    /// As [`Chunked::advance`], telling `on_data` where in `data` the
    /// chunks' data lie, and giving `on_trailer` the bytes of the trailer
    /// lines (each ending in CRLF; the final blank line left out).
    pub fn advance_with(
        &mut self,
        data: &[u8],
        on_data: &mut impl FnMut(std::ops::Range<usize>),
        on_trailer: &mut impl FnMut(u8),
    ) -> Result<Option<usize>, BadChunk> {
        let mut i = 0;
        while i < data.len() {
            if self.state == State::Data {
                let n = (data.len() - i).min(usize::try_from(self.size).unwrap_or(usize::MAX));
                on_data(i..i + n);
                i += n;
                self.size -= n as u64;
                if self.size == 0 {
                    self.state = State::DataCr;
                }
                continue;
            }
            let b = data[i];
            i += 1;
            let trailer = match self.state {
                State::Trailer => true,
                State::TrailerLf => b == b'\n',
                State::TrailerStart => b != b'\r' && b != b'\n',
                _ => false,
            };
            if trailer {
                on_trailer(b);
            }
            self.state = match (self.state, b) {
                (State::Size, b) if b.is_ascii_hexdigit() => {
                    self.digits += 1;
                    if self.digits > 15 {
                        return Err(BadChunk);
                    }
                    self.size =
                        self.size * 16 + u64::from((b as char).to_digit(16).ok_or(BadChunk)?);
                    State::Size
                }
                (State::Size, b';' | b' ' | b'\t') if self.digits > 0 => State::Extension,
                (State::Size, b'\r') if self.digits > 0 => State::SizeLf,
                (State::Extension, b'\r') => State::SizeLf,
                (State::Extension, b'\n') => return Err(BadChunk),
                (State::Extension, _) => State::Extension,
                (State::SizeLf, b'\n') => {
                    self.digits = 0;
                    if self.size == 0 {
                        State::TrailerStart
                    } else {
                        State::Data
                    }
                }
                (State::DataCr, b'\r') => State::DataLf,
                (State::DataLf, b'\n') => State::Size,
                (State::TrailerStart, b'\r') => State::EndLf,
                (State::EndLf, b'\n') => return Ok(Some(i)),
                (State::TrailerStart | State::Trailer, b'\n') => return Err(BadChunk),
                (State::Trailer, b'\r') => State::TrailerLf,
                (State::TrailerStart | State::Trailer, _) => State::Trailer,
                (State::TrailerLf, b'\n') => State::TrailerStart,
                _ => return Err(BadChunk),
            };
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ends(body: &[u8]) -> Result<Option<usize>, BadChunk> {
        Chunked::default().advance(body)
    }

    #[test]
    fn finds_the_end_of_a_chunked_body() {
        assert_eq!(ends(b"5\r\nhello\r\n0\r\n\r\nNEXT"), Ok(Some(15)));
        assert_eq!(
            ends(b"5;x=y\r\nhello\r\n0\r\nTrailer: 1\r\n\r\n"),
            Ok(Some(31))
        );
        assert_eq!(ends(b"A\r\n0123456789\r\n"), Ok(None));
        assert_eq!(ends(b"zz\r\n"), Err(BadChunk));
        assert_eq!(ends(b"5\r\nhelloX"), Err(BadChunk));
        assert_eq!(ends(b"\r\n"), Err(BadChunk));
        assert_eq!(ends(b"ffffffffffffffff\r\n"), Err(BadChunk));
    }

    #[test]
    fn byte_by_byte_gives_the_same_end() {
        let body = b"3\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nX: y\r\n\r\n";
        let mut c = Chunked::default();
        let mut end = None;
        for (i, b) in body.iter().enumerate() {
            if let Some(n) = c.advance(std::slice::from_ref(b)).unwrap() {
                end = Some(i + n);
                break;
            }
        }
        assert_eq!(end, Some(body.len()));
    }

    #[tokio::test]
    async fn relays_a_body_and_keeps_what_follows() {
        let (mut tx, mut rx) = tokio::io::duplex(1024);
        tx.write_all(b"lo\r\n0\r\n\r\nGET").await.unwrap();
        let mut out = Vec::new();
        let rest = relay(
            &mut rx,
            &mut out,
            Framing::Chunked,
            Output::AsIs,
            b"5\r\nhel",
            Gaps::both(Duration::from_secs(1)),
            &mut Vec::new(),
        )
        .await
        .unwrap();
        assert_eq!(out, b"5\r\nhello\r\n0\r\n\r\n");
        assert_eq!(rest, b"GET");

        let mut out = Vec::new();
        let rest = relay(
            &mut rx,
            &mut out,
            Framing::Length(2),
            Output::AsIs,
            b"abc",
            Gaps::both(Duration::from_secs(1)),
            &mut Vec::new(),
        )
        .await
        .unwrap();
        assert_eq!((out.as_slice(), rest.as_slice()), (&b"ab"[..], &b"c"[..]));
    }

    #[tokio::test]
    async fn a_close_delimited_body_is_rechunked() {
        let (mut tx, mut rx) = tokio::io::duplex(1024);
        tx.write_all(&[b'x'; 26]).await.unwrap();
        drop(tx);
        let mut out = Vec::new();
        let rest = relay(
            &mut rx,
            &mut out,
            Framing::UntilClose,
            Output::Chunked,
            b"abc",
            Gaps::both(Duration::from_secs(1)),
            &mut Vec::new(),
        )
        .await
        .unwrap();
        assert!(rest.is_empty());
        let want = format!("3\r\nabc\r\n1a\r\n{}\r\n0\r\n\r\n", "x".repeat(26));
        assert_eq!(String::from_utf8(out).unwrap(), want);
        let mut line = [0u8; 18];
        let n = hex_line(0x10000, &mut line);
        assert_eq!(&line[..n], b"10000\r\n");
    }

    #[tokio::test]
    async fn a_dechunked_body_leaves_its_trailers_aside() {
        let (mut tx, mut rx) = tokio::io::duplex(1024);
        tx.write_all(b"lo\r\n0\r\nX-Sum: 5\r\nX-B: 2\r\n\r\nNEXT")
            .await
            .unwrap();
        let mut out = Vec::new();
        let mut trailers = Vec::new();
        let rest = relay(
            &mut rx,
            &mut out,
            Framing::Chunked,
            Output::Dechunked,
            b"5\r\nhel",
            Gaps::both(Duration::from_secs(1)),
            &mut trailers,
        )
        .await
        .unwrap();
        assert_eq!(out, b"hello");
        assert_eq!(trailers, b"X-Sum: 5\r\nX-B: 2\r\n");
        assert_eq!(rest, b"NEXT");
    }

    #[tokio::test]
    async fn a_body_cut_short_is_broken() {
        let (tx, mut rx) = tokio::io::duplex(64);
        drop(tx);
        let mut out = Vec::new();
        let r = relay(
            &mut rx,
            &mut out,
            Framing::Length(10),
            Output::AsIs,
            b"abc",
            Gaps::both(Duration::from_secs(1)),
            &mut Vec::new(),
        )
        .await;
        assert!(matches!(r, Err(Broken::From)));
    }
}
