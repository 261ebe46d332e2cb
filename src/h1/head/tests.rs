//! Heads parsed and written: requests taken or left to Pingora, framing,
//! fields to each side.

use super::*;

fn take(head: &[u8]) -> Request<'_> {
    request(head, Some("10.0.0.9".parse().unwrap()), "http").unwrap()
}

fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap()
}

/// A response head without the `Date` line added for a backend that
/// sent none.
fn undated(bytes: &[u8]) -> String {
    text(bytes)
        .split_inclusive("\r\n")
        .filter(|l| !l.starts_with("Date: "))
        .collect()
}

#[test]
fn a_response_without_date_gets_one_and_a_dated_one_keeps_its_own() {
    let r = done(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false);
    let date = text(&r.head).lines().find(|l| l.starts_with("Date: "));
    assert!(
        date.is_some_and(|d| d.ends_with(" GMT")),
        "{}",
        text(&r.head)
    );
    let dated =
        b"HTTP/1.1 200 OK\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nContent-Length: 0\r\n\r\n";
    let r = done(dated, false);
    assert_eq!(
        text(&r.head),
        "HTTP/1.1 200 OK\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nContent-Length: 0\r\n"
    );
}

#[test]
fn an_ordinary_request_is_taken() {
    let head = b"GET /a?b=1 HTTP/1.1\r\nHost: x\r\nX-Y: z\r\n\r\n";
    let r = take(head);
    assert_eq!(r.header.uri.path(), "/a");
    assert!(r.header.headers.is_empty());
    let header = with_headers(r.header, head).unwrap();
    assert_eq!(header.headers["x-y"], "z");
    assert_eq!(header.raw_path(), b"/a?b=1");
    assert_eq!(r.body_len, 0);
    assert!(!r.close);
    let r = take(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\n");
    assert_eq!(r.body_len, 5);
    assert!(r.close);
}

#[test]
fn unusual_requests_are_left_to_pingora() {
    for head in [
        &b"GET / HTTP/1.0\r\nHost: x\r\n\r\n"[..],
        b"CONNECT x:443 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
        b"PUT / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n",
    ] {
        assert!(
            request(head, None, "http").is_none(),
            "{}",
            String::from_utf8_lossy(head)
        );
    }
}

#[test]
fn the_backend_gets_the_clients_fields_less_hop_by_hop_plus_forwarding() {
    let r = take(
        b"GET / HTTP/1.1\r\nHost: A.example\r\nConnection: keep-alive, X-Private\r\n\
          X-Private: 1\r\nKeep-Alive: 5\r\nTE: gzip, trailers\r\nProxy-Authorization: Basic x\r\n\
          X-Forwarded-For: 1.1.1.1\r\nx-forwarded-for: 2.2.2.2\r\nX-Forwarded-Proto: gopher\r\n\
          X-Forwarded-Host: evil\r\nX-Kept: 1\r\n\r\n",
    );
    assert_eq!(
        text(&r.fields),
        "Host: A.example\r\nX-Kept: 1\r\nte: trailers\r\n\
         x-forwarded-for: 1.1.1.1, 2.2.2.2, 10.0.0.9\r\n\
         x-forwarded-proto: http\r\nx-forwarded-host: A.example\r\n"
    );
    let r = request(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", None, "https").unwrap();
    assert_eq!(
        text(&r.fields),
        "Host: a\r\nx-forwarded-proto: https\r\nx-forwarded-host: a\r\n"
    );
}

fn done(buf: &[u8], head: bool) -> Response {
    match response(buf, head, &ResponseAdditions::default()) {
        Parsed::Done(r) => *r,
        _ => panic!("not parsed: {}", String::from_utf8_lossy(buf)),
    }
}

#[test]
fn response_framing_follows_rfc_9112() {
    let r = done(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc", false);
    assert_eq!(
        (r.framing, r.reusable, r.head_len),
        (Framing::Length(3), true, 38)
    );
    let r = done(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", true);
    assert_eq!(r.framing, Framing::Empty);
    let r = done(b"HTTP/1.1 204 No Content\r\n\r\n", false);
    assert_eq!(r.framing, Framing::Empty);
    let r = done(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 9\r\n\r\n",
        false,
    );
    assert_eq!(r.framing, Framing::Chunked);
    assert_eq!(
        undated(&r.head),
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
    );
    let r = done(b"HTTP/1.1 200 OK\r\n\r\n", false);
    assert_eq!((r.framing, r.reusable), (Framing::UntilClose, false));
    let r = done(
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
        false,
    );
    assert!(!r.reusable);
    let r = done(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false);
    assert!(!r.reusable);
    assert!(matches!(
        response::<Vec<u8>>(b"HTTP/1.1 200 OK\r\nContent-Le", false, &Default::default()),
        Parsed::Partial
    ));
    assert!(matches!(
        response::<Vec<u8>>(
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            false,
            &Default::default()
        ),
        Parsed::Malformed
    ));
}

#[test]
fn the_client_gets_the_backends_fields_less_hop_by_hop_plus_additions() {
    let r = done(
        b"HTTP/1.1 404 Gone Fishing\r\nConnection: keep-alive, X-Secret\r\nX-Secret: 1\r\n\
          Keep-Alive: timeout=5\r\nContent-Length: 0\r\n\r\n",
        false,
    );
    assert_eq!(
        undated(&r.head),
        "HTTP/1.1 404 Gone Fishing\r\nContent-Length: 0\r\n"
    );
    let r = done(b"HTTP/1.1 599\r\n\r\n", false);
    // (No length: the body is sent on in chunks.)
    assert_eq!(
        undated(&r.head),
        "HTTP/1.1 599 \r\nTransfer-Encoding: chunked\r\n"
    );
    assert!(r.rechunk);
    let r = done(b"HTTP/1.1 503\r\n\r\n", false);
    assert_eq!(
        undated(&r.head),
        "HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n"
    );

    let mut ctx = crate::proxy::RequestCtx::new();
    ctx.set_cookie = Some("sy=abc; Path=/".into());
    ctx.rate = Some(crate::filters::rate_limit::Decision {
        allowed: true,
        remaining: 4,
        limit: 5,
        retry_after: std::time::Duration::ZERO,
    });
    let additions = ResponseAdditions::take(&mut ctx).unwrap();
    let Parsed::Done(r) = response::<Vec<u8>>(
        b"HTTP/1.1 200 OK\r\nratelimit-limit: 99\r\nSet-Cookie: app=1\r\nContent-Length: 0\r\n\r\n",
        false,
        &additions,
    ) else {
        panic!("not parsed")
    };
    assert_eq!(
        undated(&r.head),
        "HTTP/1.1 200 OK\r\nSet-Cookie: app=1\r\nContent-Length: 0\r\nSet-Cookie: sy=abc; Path=/\r\n\
         RateLimit-Limit: 5\r\nRateLimit-Remaining: 4\r\n"
    );
}

#[test]
fn lengths_are_plain_digits() {
    assert_eq!(plain_number(b"0"), Some(0));
    assert_eq!(plain_number(b"1234"), Some(1234));
    assert_eq!(
        plain_number(b"9999999999999999999"),
        Some(9_999_999_999_999_999_999)
    );
    for bad in [
        &b""[..],
        b"+1",
        b"-1",
        b"1 ",
        b" 1",
        b"1,1",
        b"0x1",
        b"12345678901234567890",
    ] {
        assert_eq!(
            plain_number(bad),
            None,
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn the_request_line_is_written_with_the_fields() {
    let r = take(b"GET /p HTTP/1.1\r\nHost: x\r\nX-Case: 1\r\n\r\n");
    let mut out = Vec::new();
    write_request(&r.header.method, b"/q", &r.fields, &mut out);
    assert!(text(&out).starts_with("GET /q HTTP/1.1\r\nHost: x\r\nX-Case: 1\r\n"));
    assert!(text(&out).ends_with("\r\n\r\n"));
}
