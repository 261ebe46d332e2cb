//! The decision: which responses are compressed, and which get `Vary`.

use std::sync::Arc;

use super::*;
use crate::config::{Compress, MediaRange};

fn rules() -> Arc<Compress> {
    Arc::new(Compress {
        types: vec![
            MediaRange::AnySubtype("text".into()),
            MediaRange::Exact("application/json".into()),
        ],
        min_bytes: 1024,
    })
}

fn offer(method: &str, accept: &str) -> Offer {
    let method = http::Method::from_bytes(method.as_bytes()).unwrap();
    Offer::new(&rules(), &method, [accept.as_bytes()])
}

fn decide(offer: &Offer, status: u16, fields: &[(&str, &str)]) -> Decision {
    offer.decide(
        status,
        fields.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())),
    )
}

const HTML: (&str, &str) = ("Content-Type", "text/html; charset=utf-8");

#[test]
fn a_qualifying_response_is_compressed_with_the_clients_coding() {
    let o = offer("GET", "gzip, br");
    let d = decide(&o, 200, &[HTML, ("Content-Length", "5000")]);
    assert_eq!(d.coding, Some(Coding::Br));
    assert_eq!(d.vary, Vary::Add);
    // No length: compressed too.
    let d = decide(&o, 404, &[("content-type", "Application/JSON")]);
    assert_eq!(d.coding, Some(Coding::Br));
    let d = decide(&offer("GET", "gzip"), 200, &[HTML]);
    assert_eq!(d.coding, Some(Coding::Gzip));
}

#[test]
fn a_client_that_takes_no_coding_still_gets_vary() {
    for accept in ["", "identity", "gzip;q=0", "deflate"] {
        let d = decide(&offer("GET", accept), 200, &[HTML]);
        assert_eq!(
            d,
            Decision {
                coding: None,
                vary: Vary::Add
            },
            "{accept:?}"
        );
    }
}

#[test]
fn head_and_bodiless_statuses_are_not_compressed() {
    let d = decide(&offer("HEAD", "gzip"), 200, &[HTML]);
    assert_eq!(d.coding, None);
    let o = offer("GET", "gzip");
    for status in [100, 101, 204, 206, 304] {
        assert_eq!(decide(&o, status, &[HTML]), Decision::NONE, "{status}");
    }
}

#[test]
fn encoded_ranged_no_transform_small_or_other_types_are_left_alone() {
    let o = offer("GET", "gzip");
    for extra in [
        ("Content-Encoding", "br"),
        ("Content-Range", "bytes 0-9/100"),
        ("Cache-Control", "public, No-Transform"),
        ("Content-Length", "1023"),
        ("Transfer-Encoding", "gzip"),
        ("Trailer", "X-Sum"),
    ] {
        assert_eq!(decide(&o, 200, &[HTML, extra]), Decision::NONE, "{extra:?}");
    }
    for ty in [
        "image/png",
        "application/octet-stream",
        "textual/x",
        "text",
        "",
    ] {
        assert_eq!(
            decide(&o, 200, &[("Content-Type", ty)]),
            Decision::NONE,
            "{ty}"
        );
    }
    // No Content-Type at all.
    assert_eq!(decide(&o, 200, &[]), Decision::NONE);
    // An empty body stays empty even when min_bytes allows it.
    let zero = Offer::new(
        &Arc::new(Compress {
            types: rules().types.clone(),
            min_bytes: 0,
        }),
        &http::Method::GET,
        [&b"gzip"[..]],
    );
    assert_eq!(
        decide(&zero, 200, &[HTML, ("Content-Length", "0")]),
        Decision::NONE
    );
    assert_eq!(
        decide(&zero, 200, &[HTML, ("Content-Length", "1")]).coding,
        Some(Coding::Gzip)
    );
    // Exactly min_bytes is enough; chunked framing is fine.
    let d = decide(
        &o,
        200,
        &[
            HTML,
            ("Content-Length", "1024"),
            ("Transfer-Encoding", "chunked"),
        ],
    );
    assert_eq!(d.coding, Some(Coding::Gzip));
}

#[test]
fn vary_is_appended_unless_it_already_covers_accept_encoding() {
    let o = offer("GET", "gzip");
    let d = decide(&o, 200, &[HTML, ("Vary", "Origin")]);
    assert_eq!(d.vary, Vary::Append);
    let d = decide(&o, 200, &[HTML, ("Vary", "origin, accept-encoding")]);
    assert_eq!(d.vary, Vary::Keep);
    let d = decide(&o, 200, &[HTML, ("Vary", "Origin"), ("Vary", "*")]);
    assert_eq!(d.vary, Vary::Keep);

    let mut d = decide(&o, 200, &[HTML, ("Vary", "Origin"), ("Vary", "Cookie")]);
    assert!(matches!(
        edit_field(&mut d, b"Content-Length", b"9"),
        Edit::Drop
    ));
    match edit_field(&mut d, b"vary", b"Origin") {
        Edit::Replace(v) => assert_eq!(v, b"Origin, Accept-Encoding"),
        _ => panic!("first Vary not extended"),
    }
    assert!(matches!(edit_field(&mut d, b"Vary", b"Cookie"), Edit::Keep));
}

#[test]
fn the_added_fields() {
    let d = Decision {
        coding: Some(Coding::Zstd),
        vary: Vary::Add,
    };
    let added: Vec<_> = added_fields(&d, true).collect();
    assert_eq!(
        added,
        [
            (&b"Content-Encoding"[..], &b"zstd"[..]),
            (b"Transfer-Encoding", b"chunked"),
            (b"Vary", b"Accept-Encoding"),
        ]
    );
    let d = Decision {
        coding: None,
        vary: Vary::Add,
    };
    assert_eq!(added_fields(&d, true).count(), 1);
}
