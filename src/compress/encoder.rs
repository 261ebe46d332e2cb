//! A streaming encoder for one response body: data in as it arrives,
//! compressed bytes out, with a flush that makes everything pushed so far
//! decodable at once (a sync flush), so a paused stream (server-sent
//! events) reaches the client event by event. The codecs are the crates
//! Pingora itself links (`flate2` on zlib-ng, `brotli`, `zstd`).
//!
//! Levels (README "Compression"): gzip 6, brotli 4, zstd 3 — the usual
//! on-the-fly choices (NGINX's and zlib's default gzip level, the brotli
//! level CDNs use for dynamic content, zstd's default).

use std::io::{self, Write};

use super::Coding;

pub const GZIP_LEVEL: u32 = 6;
pub const BROTLI_QUALITY: u32 = 4;
pub const ZSTD_LEVEL: i32 = 3;
/// Brotli's window (log2 of bytes): 4 MiB, its default.
const BROTLI_WINDOW: u32 = 22;
/// Internal buffer of the brotli writer.
const BROTLI_BUFFER: usize = 16 * 1024;

/// One body's encoder. The compressed bytes collect in the codec's own
/// `Vec` and are moved out by each call.
pub struct Encoder(Codec);

/// (Boxed: an `Encoder` stays two words where it waits unused, in every
/// request's context.)
enum Codec {
    Gzip(Box<flate2::write::GzEncoder<Vec<u8>>>),
    Br(Box<brotli::CompressorWriter<Vec<u8>>>),
    Zstd(Box<zstd::stream::write::Encoder<'static, Vec<u8>>>),
    /// Finished: nothing more comes out.
    Done,
}

impl Encoder {
    pub fn new(coding: Coding) -> io::Result<Self> {
        let codec = match coding {
            Coding::Gzip => Codec::Gzip(Box::new(flate2::write::GzEncoder::new(
                Vec::new(),
                flate2::Compression::new(GZIP_LEVEL),
            ))),
            Coding::Br => Codec::Br(Box::new(brotli::CompressorWriter::new(
                Vec::new(),
                BROTLI_BUFFER,
                BROTLI_QUALITY,
                BROTLI_WINDOW,
            ))),
            Coding::Zstd => {
                let e = zstd::stream::write::Encoder::new(Vec::new(), ZSTD_LEVEL)?;
                Codec::Zstd(Box::new(e))
            }
        };
        Ok(Self(codec))
    }

    /// Compresses `data`; whatever compressed bytes are ready are appended
    /// to `out` (often none: codecs gather input into blocks).
    pub fn push(&mut self, data: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        match &mut self.0 {
            Codec::Gzip(e) => e.write_all(data)?,
            Codec::Br(e) => e.write_all(data)?,
            Codec::Zstd(e) => e.write_all(data)?,
            Codec::Done => return Err(io::Error::other("encoder already finished")),
        }
        self.take(out);
        Ok(())
    }

    /// Makes everything pushed so far decodable by the client: appends it
    /// to `out`. Costs a few bytes and a little ratio each time.
    pub fn flush(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        match &mut self.0 {
            Codec::Gzip(e) => e.flush()?,
            Codec::Br(e) => e.flush()?,
            Codec::Zstd(e) => e.flush()?,
            Codec::Done => return Ok(()),
        }
        self.take(out);
        Ok(())
    }

    /// Ends the stream: the rest and the codec's end mark go to `out`.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        match std::mem::replace(&mut self.0, Codec::Done) {
            Codec::Gzip(e) => out.append(&mut e.finish()?),
            // (Its `into_inner` writes the end of the stream.)
            Codec::Br(e) => out.append(&mut e.into_inner()),
            Codec::Zstd(e) => out.append(&mut e.finish()?),
            Codec::Done => {}
        }
        Ok(())
    }

    /// Moves the compressed bytes gathered so far to `out`.
    fn take(&mut self, out: &mut Vec<u8>) {
        let inner = match &mut self.0 {
            Codec::Gzip(e) => e.get_mut(),
            Codec::Br(e) => e.get_mut(),
            Codec::Zstd(e) => e.get_mut(),
            Codec::Done => return,
        };
        if out.is_empty() {
            // The usual case: hand the buffer over instead of copying.
            std::mem::swap(inner, out);
        } else {
            out.append(inner);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Read;

    pub(crate) fn decode(coding: Coding, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        match coding {
            Coding::Gzip => flate2::read::GzDecoder::new(data)
                .read_to_end(&mut out)
                .unwrap(),
            Coding::Br => brotli::Decompressor::new(data, 4096)
                .read_to_end(&mut out)
                .unwrap(),
            Coding::Zstd => zstd::stream::read::Decoder::new(data)
                .unwrap()
                .read_to_end(&mut out)
                .unwrap(),
        };
        out
    }

    fn text() -> Vec<u8> {
        (0..2000)
            .map(|i| format!("{{\"id\":{i},\"name\":\"item {i}\",\"ok\":true}}\n"))
            .collect::<String>()
            .into_bytes()
    }

    #[test]
    fn every_coding_round_trips_in_pieces() {
        let body = text();
        for coding in Coding::PREFERRED {
            let mut e = Encoder::new(coding).unwrap();
            let mut out = Vec::new();
            for piece in body.chunks(1000) {
                e.push(piece, &mut out).unwrap();
            }
            e.finish(&mut out).unwrap();
            assert!(out.len() < body.len() / 4, "{coding:?}: {}", out.len());
            assert_eq!(decode(coding, &out), body, "{coding:?}");
            // Finished: a later flush or finish adds nothing.
            let before = out.len();
            e.flush(&mut out).unwrap();
            e.finish(&mut out).unwrap();
            assert_eq!(out.len(), before);
        }
    }

    #[test]
    fn a_flush_makes_what_was_pushed_decodable() {
        for coding in Coding::PREFERRED {
            let mut e = Encoder::new(coding).unwrap();
            let mut out = Vec::new();
            e.push(b"data: one\n\n", &mut out).unwrap();
            e.flush(&mut out).unwrap();
            // A streaming decoder given only this much yields the event.
            let mut seen = Vec::new();
            match coding {
                Coding::Gzip => {
                    let mut d = flate2::write::GzDecoder::new(&mut seen);
                    d.write_all(&out).unwrap();
                    d.flush().unwrap();
                }
                Coding::Br => {
                    let mut d = brotli::DecompressorWriter::new(&mut seen, 4096);
                    d.write_all(&out).unwrap();
                    d.flush().unwrap();
                }
                Coding::Zstd => {
                    let mut d = zstd::stream::write::Decoder::new(&mut seen).unwrap();
                    d.write_all(&out).unwrap();
                    d.flush().unwrap();
                }
            }
            assert_eq!(seen, b"data: one\n\n", "{coding:?}");
        }
    }
}
