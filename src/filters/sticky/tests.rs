//! Tokens round-trip, resist forgery and hide addresses; cookies parse.

use super::*;

const ADDRS: [&str; 3] = ["10.0.0.1:8080", "10.0.0.2:8080", "backend.internal:9000"];

fn key() -> StickyKey {
    StickyKey::from_secret(b"0123456789abcdef0123456789abcdef").unwrap()
}

fn decode(token: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(token).unwrap()
}

#[test]
fn tokens_round_trip() {
    let k = key();
    for (i, addr) in ADDRS.iter().enumerate() {
        let t = k.token("api", i, addr);
        assert_eq!(t.len(), TOKEN_CHARS);
        assert_eq!(k.backend_for("api", &t, ADDRS), Some(i));
    }
}

#[test]
fn the_same_secret_makes_the_same_tokens() {
    // What lets several instances, or an upgrade, share stickiness.
    let a = StickyKey::from_secret(b"a shared secret of some length").unwrap();
    let b = StickyKey::from_secret(b"  a shared secret of some length\n").unwrap();
    assert_eq!(a.token("api", 1, ADDRS[1]), b.token("api", 1, ADDRS[1]));
    assert!(!a.is_random());
    assert!(StickyKey::random().is_random());
}

#[test]
fn every_flipped_bit_is_rejected_or_names_the_same_backend() {
    let k = key();
    let t = k.token("api", 1, ADDRS[1]);
    let raw = decode(&t);
    for byte in 0..raw.len() {
        for bit in 0..8 {
            let mut forged = raw.clone();
            forged[byte] ^= 1 << bit;
            let found = k.backend_for("api", &URL_SAFE_NO_PAD.encode(&forged), ADDRS);
            if byte < HINT_BYTES {
                // A wrong hint only costs a scan; the tag still names backend 1.
                assert_eq!(found, Some(1), "hint byte {byte} bit {bit}");
            } else {
                assert_eq!(found, None, "tag byte {byte} bit {bit}");
            }
        }
    }
}

#[test]
fn a_forged_index_names_no_other_backend() {
    let k = key();
    let raw = decode(&k.token("api", 0, ADDRS[0]));
    for hint in [1u32, 2, 3, 1000, u32::MAX] {
        let mut forged = raw.clone();
        forged[..HINT_BYTES].copy_from_slice(&hint.to_be_bytes());
        let t = URL_SAFE_NO_PAD.encode(&forged);
        assert_eq!(k.backend_for("api", &t, ADDRS), Some(0));
        assert_eq!(k.backend_for("api", &t, &ADDRS[1..]), None, "0 is gone");
    }
}

#[test]
fn other_upstreams_and_keys_do_not_verify() {
    let k = key();
    let t = k.token("api", 0, ADDRS[0]);
    assert_eq!(k.backend_for("web", &t, ADDRS), None);
    let other = StickyKey::from_secret(b"another secret, just as long").unwrap();
    assert_eq!(other.backend_for("api", &t, ADDRS), None);
    assert_eq!(StickyKey::random().backend_for("api", &t, ADDRS), None);
    // Name and address are length-prefixed: shifting bytes between them changes the tag.
    let shifted = k.token("ap", 0, "i10.0.0.1:8080");
    assert_eq!(k.backend_for("api", &shifted, ADDRS), None);
}

#[test]
fn removed_backends_are_absent_and_moved_ones_are_found() {
    let k = key();
    let t = k.token("api", 2, ADDRS[2]);
    assert_eq!(k.backend_for("api", &t, &ADDRS[..2]), None);
    let reordered = [ADDRS[2], ADDRS[0]];
    assert_eq!(k.backend_for("api", &t, reordered), Some(0));
    assert_eq!(k.backend_for("api", &t, [] as [&str; 0]), None);
}

#[test]
fn malformed_tokens_are_absent() {
    let k = key();
    let t = k.token("api", 0, ADDRS[0]);
    let padded = format!("{}=", &t);
    let non_b64 = format!("{}*", &t[1..]);
    let longer = URL_SAFE_NO_PAD.encode([decode(&t), vec![0]].concat());
    for bad in [
        "",
        "x",
        &t[1..],
        &padded,
        &non_b64,
        &longer,
        &t.to_uppercase(),
    ] {
        assert_eq!(k.backend_for("api", bad, ADDRS), None, "{bad:?}");
    }
}

#[test]
fn tokens_do_not_reveal_the_address() {
    let k = key();
    for (i, addr) in ADDRS.iter().enumerate() {
        let t = k.token("api", i, addr);
        let raw = decode(&t);
        for needle in [addr.as_bytes(), b"10.0.0", b"8080", b"backend"] {
            assert!(!t.as_bytes().windows(needle.len()).any(|w| w == needle));
            assert!(!raw.windows(needle.len()).any(|w| w == needle));
        }
        assert!(!t.contains(&URL_SAFE_NO_PAD.encode(addr)[..8]));
    }
}

#[test]
fn short_keys_are_refused() {
    assert_eq!(
        StickyKey::from_secret(b"too short").unwrap_err(),
        StickyKeyError::TooShort(9)
    );
    assert_eq!(
        StickyKey::from_secret(b"   \n").unwrap_err(),
        StickyKeyError::TooShort(0)
    );
    assert!(StickyKey::from_secret(&[7; MIN_KEY_BYTES]).is_ok());
}

#[test]
fn debug_output_hides_the_key() {
    let shown = format!("{:?}", key());
    assert!(!shown.contains("0123456789"), "{shown}");
}

#[test]
fn set_cookie_format_is_exact() {
    assert_eq!(
        set_cookie_value("SWITCHYARD_ID", "tok", None),
        "SWITCHYARD_ID=tok; Path=/; HttpOnly"
    );
    assert_eq!(
        set_cookie_value("SWITCHYARD_ID", "tok", Some(Duration::from_secs(3600))),
        "SWITCHYARD_ID=tok; Path=/; HttpOnly; Max-Age=3600"
    );
    // Never Max-Age=0, which would delete the cookie.
    assert_eq!(
        set_cookie_value("s", "t", Some(Duration::from_millis(1500))),
        "s=t; Path=/; HttpOnly; Max-Age=2"
    );
    assert_eq!(
        set_cookie_value("s", "t", Some(Duration::from_millis(1))),
        "s=t; Path=/; HttpOnly; Max-Age=1"
    );
}

fn values(vs: &[&'static str]) -> Vec<HeaderValue> {
    vs.iter().map(|v| HeaderValue::from_static(v)).collect()
}

#[test]
fn cookies_are_found_among_others() {
    let h = values(&["a=1; SID=abc; b=2"]);
    assert_eq!(cookie(&h, "SID"), Some("abc"));
    assert_eq!(cookie(&h, "a"), Some("1"));
    assert_eq!(cookie(&h, "b"), Some("2"));
    assert_eq!(cookie(&h, "sid"), None, "names are case-sensitive");
    assert_eq!(cookie(&h, "S"), None);
    assert_eq!(cookie(&values(&[]), "SID"), None);
}

#[test]
fn cookie_parsing_tolerates_spacing_quotes_and_several_headers() {
    let h = values(&["a=1;b=2", "  SID = \"abc\" ;c=3", "SID=later"]);
    assert_eq!(cookie(&h, "b"), Some("2"));
    assert_eq!(cookie(&h, "SID"), Some("abc"), "first one wins, unquoted");
    assert_eq!(cookie(&h, "c"), Some("3"));
    let odd = values(&["novalue; =x; e=; q=\"\"; t=\tv\t; eq=a=b"]);
    assert_eq!(cookie(&odd, "novalue"), None);
    assert_eq!(cookie(&odd, "e"), Some(""));
    assert_eq!(cookie(&odd, "q"), Some(""));
    assert_eq!(cookie(&odd, "t"), Some("v"));
    assert_eq!(cookie(&odd, "eq"), Some("a=b"));
    assert_eq!(cookie(&values(&["q=\""]), "q"), Some("\""));
}

#[test]
fn non_utf8_cookie_values_are_skipped() {
    let h = vec![
        HeaderValue::from_bytes(b"SID=\xff\xfe").unwrap(),
        HeaderValue::from_static("SID=ok"),
    ];
    assert_eq!(cookie(&h, "SID"), Some("ok"));
}
