//! The client's `Accept-Encoding` (RFC 9110 §12.5.3): which of the codings
//! switchyard produces it takes, and which one it gets.
//!
//! Each listed coding has a weight (`q`, 0 to 1, three decimals at most;
//! 1 when absent). `q=0` refuses a coding. `*` stands for every coding not
//! listed by name. `x-gzip` is `gzip` (RFC 9110 §8.4.1.3). Among the codings
//! with the highest weight the server prefers `br`, then `zstd`, then
//! `gzip`. No header, or one naming none of them, means no compression.

use super::Coding;

/// A weight in thousandths: 0 (refused) to 1000.
type Weight = u16;

/// The coding `values` (every `Accept-Encoding` line of the request) give
/// the best weight, if any is acceptable.
pub fn best<'v>(values: impl IntoIterator<Item = &'v [u8]>) -> Option<Coding> {
    // Per coding in `Coding::PREFERRED` order: its weight if named.
    let mut named: [Option<Weight>; 3] = [None; 3];
    let mut star: Option<Weight> = None;
    for value in values {
        for item in value.split(|b| *b == b',') {
            let Some((name, weight)) = entry(item) else {
                continue;
            };
            let slot = if name == b"*" {
                &mut star
            } else if let Some(i) = Coding::PREFERRED.iter().position(|c| c.matches(name)) {
                &mut named[i]
            } else {
                continue;
            };
            // A coding listed twice keeps its best weight.
            *slot = Some(slot.map_or(weight, |w| w.max(weight)));
        }
    }
    let mut best: Option<(Coding, Weight)> = None;
    for (coding, weight) in Coding::PREFERRED.into_iter().zip(named) {
        let Some(w) = weight.or(star).filter(|w| *w > 0) else {
            continue;
        };
        // Strictly better only: on a tie the earlier (preferred) one stays.
        if best.is_none_or(|(_, b)| w > b) {
            best = Some((coding, w));
        }
    }
    best.map(|(c, _)| c)
}

/// One list item: its coding (lower-case compared by the caller) and weight.
/// `None` for an empty item or a malformed weight (the item is ignored).
fn entry(item: &[u8]) -> Option<(&[u8], Weight)> {
    let mut parts = item.split(|b| *b == b';');
    let name = parts.next()?.trim_ascii();
    if name.is_empty() {
        return None;
    }
    let mut weight = 1000;
    for param in parts {
        let param = param.trim_ascii();
        let (key, value) = param.split_once_byte(b'=')?;
        if key.trim_ascii().eq_ignore_ascii_case(b"q") {
            weight = qvalue(value.trim_ascii())?;
        }
    }
    Some((name, weight))
}

/// `0`, `0.5`, `1`, `1.000`... in thousandths (RFC 9110 §12.4.2).
fn qvalue(v: &[u8]) -> Option<Weight> {
    let (whole, frac) = match v.iter().position(|b| *b == b'.') {
        Some(i) => (&v[..i], &v[i + 1..]),
        None => (v, &b""[..]),
    };
    if whole.len() != 1 || frac.len() > 3 || !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut thousandths: Weight = 0;
    for i in 0..3 {
        let digit = frac.get(i).map_or(0, |d| Weight::from(d - b'0'));
        thousandths = thousandths * 10 + digit;
    }
    match whole[0] {
        b'0' => Some(thousandths),
        b'1' if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// `split_once` for byte slices (stable `<[u8]>::split_once` is not).
trait SplitOnce {
    fn split_once_byte(&self, at: u8) -> Option<(&[u8], &[u8])>;
}

impl SplitOnce for [u8] {
    fn split_once_byte(&self, at: u8) -> Option<(&[u8], &[u8])> {
        let i = self.iter().position(|b| *b == at)?;
        Some((&self[..i], &self[i + 1..]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pick(v: &str) -> Option<Coding> {
        best([v.as_bytes()])
    }

    #[test]
    fn the_server_prefers_br_then_zstd_then_gzip_on_equal_weight() {
        assert_eq!(pick("gzip, deflate, br, zstd"), Some(Coding::Br));
        assert_eq!(pick("gzip, zstd"), Some(Coding::Zstd));
        assert_eq!(pick("gzip"), Some(Coding::Gzip));
        assert_eq!(pick("GZIP"), Some(Coding::Gzip));
        assert_eq!(pick("x-gzip"), Some(Coding::Gzip));
        assert_eq!(pick("deflate, compress"), None);
        assert_eq!(pick(""), None);
        assert_eq!(best(std::iter::empty()), None);
    }

    #[test]
    fn weights_are_respected() {
        assert_eq!(pick("br;q=0.5, gzip;q=0.8"), Some(Coding::Gzip));
        assert_eq!(pick("br;q=0.8, gzip;q=1.0, zstd;q=0.9"), Some(Coding::Gzip));
        assert_eq!(pick("br ; q=0.001 , gzip ; Q=0"), Some(Coding::Br));
        assert_eq!(pick("br;q=0.50, zstd;q=0.5"), Some(Coding::Br));
    }

    #[test]
    fn q_zero_refuses() {
        assert_eq!(pick("gzip;q=0"), None);
        assert_eq!(pick("br;q=0, gzip;q=0.000"), None);
        assert_eq!(pick("br;q=0, gzip"), Some(Coding::Gzip));
    }

    #[test]
    fn star_covers_what_is_not_named() {
        assert_eq!(pick("*"), Some(Coding::Br));
        assert_eq!(pick("br;q=0, *"), Some(Coding::Zstd));
        assert_eq!(pick("br;q=0, zstd;q=0, *;q=0.1"), Some(Coding::Gzip));
        assert_eq!(pick("*;q=0"), None);
        assert_eq!(pick("gzip, *;q=0"), Some(Coding::Gzip));
        assert_eq!(pick("identity, *;q=0"), None);
        assert_eq!(pick("*;q=0.2, gzip;q=0.5"), Some(Coding::Gzip));
    }

    #[test]
    fn malformed_items_are_ignored() {
        assert_eq!(pick("br;q=2, gzip"), Some(Coding::Gzip));
        assert_eq!(pick("br;q=0.1234, gzip;q=0.1"), Some(Coding::Gzip));
        assert_eq!(pick("br;q=x"), None);
        assert_eq!(pick("br;q, gzip;level=1"), Some(Coding::Gzip));
        assert_eq!(pick(",,, ;q=1, zstd"), Some(Coding::Zstd));
    }

    #[test]
    fn several_lines_count_together() {
        let lines = [&b"gzip;q=0.5"[..], b"br;q=0.4", b"gzip;q=0.3"];
        assert_eq!(best(lines), Some(Coding::Gzip));
    }

    #[test]
    fn qvalues_in_thousandths() {
        assert_eq!(qvalue(b"1"), Some(1000));
        assert_eq!(qvalue(b"1.000"), Some(1000));
        assert_eq!(qvalue(b"0.5"), Some(500));
        assert_eq!(qvalue(b"0.05"), Some(50));
        assert_eq!(qvalue(b"0."), Some(0));
        assert_eq!(qvalue(b"1.5"), None);
        assert_eq!(qvalue(b"2"), None);
        assert_eq!(qvalue(b".5"), None);
        assert_eq!(qvalue(b""), None);
    }
}
