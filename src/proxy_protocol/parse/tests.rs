use super::*;
use crate::proxy_protocol::{header, ConnAddrs, Version};
use proptest::prelude::*;

fn complete(buf: &[u8]) -> (Header, usize) {
    match parse(buf) {
        Ok(Parsed::Complete { header, len }) => (header, len),
        other => panic!("{:?}: {other:?}", String::from_utf8_lossy(buf)),
    }
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn v1_tcp4_tcp6_and_unknown() {
    let line = b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\nGET /";
    let (h, len) = complete(line);
    assert_eq!(len, line.len() - 5);
    assert_eq!(
        h,
        Header::Proxied {
            source: addr("192.0.2.1:56324"),
            dest: addr("198.51.100.2:443")
        }
    );
    let (h, _) = complete(b"PROXY TCP6 2001:db8::1 ::1 1 65535\r\n");
    assert_eq!(h.source(), Some(addr("[2001:db8::1]:1")));
    assert_eq!(complete(b"PROXY UNKNOWN\r\n"), (Header::Unknown, 15));
    let (h, _) = complete(b"PROXY UNKNOWN ffff:: 1.2.3.4 9 9\r\n");
    assert_eq!(h, Header::Unknown);
}

#[test]
fn v1_malformed_lines_are_refused() {
    for bad in [
        &b"PROXY TCP4 192.0.2.1 198.51.100.2 56324\r\n"[..],
        b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443 7\r\n",
        b"PROXY TCP4 2001:db8::1 198.51.100.2 1 2\r\n",
        b"PROXY TCP6 192.0.2.1 ::1 1 2\r\n",
        b"PROXY TCP4 192.0.2.1 198.51.100.2 65536 2\r\n",
        b"PROXY TCP4 192.0.2.1 198.51.100.2 +1 2\r\n",
        b"PROXY TCP4  192.0.2.1 198.51.100.2 1 2\r\n",
        b"PROXY UDP4 192.0.2.1 198.51.100.2 1 2\r\n",
        b"PROXY TCP4 192.0.2.1 198.51.100.2 1 2\n",
        b"PROXY TCP4 192.0.2.1\r198.51.100.2 1 2\r\n",
        b"PROXY \xff\r\n",
    ] {
        assert!(
            matches!(parse(bad), Err(ParseError::V1(_))),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    assert_eq!(parse(b"GET / HTTP/1.1\r\n"), Err(ParseError::NotProxy));
    assert_eq!(parse(b"PROXX "), Err(ParseError::NotProxy));
}

#[test]
fn v1_without_crlf_in_107_bytes_is_oversized() {
    let mut long = b"PROXY UNKNOWN ".to_vec();
    long.resize(106, b'a');
    assert_eq!(parse(&long), Ok(Parsed::Incomplete));
    long.push(b'a');
    assert!(matches!(parse(&long), Err(ParseError::V1(_))));
    // Exactly 107 bytes with the CRLF last is still valid.
    long.truncate(105);
    long.extend_from_slice(b"\r\n");
    assert_eq!(complete(&long).1, 107);
}

#[test]
fn every_prefix_of_a_header_is_incomplete() {
    let addrs = Some(ConnAddrs {
        client: addr("192.0.2.1:5"),
        local: addr("192.0.2.2:6"),
    });
    for version in [Version::V1, Version::V2] {
        let wire = header(version, addrs);
        for n in 0..wire.len() {
            assert_eq!(parse(&wire[..n]), Ok(Parsed::Incomplete), "{version:?} {n}");
        }
        assert_eq!(complete(&wire).1, wire.len());
    }
}

#[test]
fn v2_local_unspec_unix_and_tlvs() {
    let mut local = V2_SIGNATURE.to_vec();
    local.extend_from_slice(&[0x20, 0x11, 0, 12]);
    local.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2, 0, 1, 0, 2]);
    assert_eq!(complete(&local), (Header::Local, 28));

    let mut unspec = V2_SIGNATURE.to_vec();
    unspec.extend_from_slice(&[0x21, 0x00, 0, 0]);
    assert_eq!(complete(&unspec), (Header::Unknown, 16));

    let mut unix = V2_SIGNATURE.to_vec();
    unix.extend_from_slice(&[0x21, 0x31, 0, 216]);
    unix.resize(16 + 216, 0);
    assert_eq!(complete(&unix), (Header::Unknown, 232));

    let mut tlvs = V2_SIGNATURE.to_vec();
    tlvs.extend_from_slice(&[0x21, 0x11, 0, 12 + 7]);
    tlvs.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2, 0x1f, 0x90, 0, 80]);
    tlvs.extend_from_slice(&[0x02, 0, 4, b'h', b'o', b's', b't']);
    tlvs.extend_from_slice(b"GET");
    let (h, len) = complete(&tlvs);
    assert_eq!(len, tlvs.len() - 3);
    assert_eq!(h.source(), Some(addr("10.0.0.1:8080")));
}

#[test]
fn v2_malformed_headers_are_refused() {
    let with = |ver_cmd: u8, fam: u8, len: u8| {
        let mut v = V2_SIGNATURE.to_vec();
        v.extend_from_slice(&[ver_cmd, fam, 0, len]);
        v.resize(16 + usize::from(len), 0);
        v
    };
    for bad in [
        with(0x11, 0x11, 12), // version 1 in a v2 header
        with(0x22, 0x11, 12), // command 2
        with(0x21, 0x11, 11), // short IPv4 block
        with(0x21, 0x21, 35), // short IPv6 block
        with(0x21, 0x41, 12), // family 4
    ] {
        assert!(matches!(parse(&bad), Err(ParseError::V2(_))), "{bad:?}");
    }
    let mut sig = V2_SIGNATURE.to_vec();
    sig[5] = b'X';
    assert_eq!(parse(&sig), Err(ParseError::NotProxy));
}

#[test]
fn encode_round_trips_and_unifies_families() {
    let cases = [
        ("192.0.2.1:5", "192.0.2.2:6", "192.0.2.1:5"),
        ("[2001:db8::1]:5", "[::1]:6", "[2001:db8::1]:5"),
        ("[::ffff:192.0.2.1]:5", "192.0.2.2:6", "192.0.2.1:5"),
        ("192.0.2.1:5", "[2001:db8::2]:6", "[::ffff:192.0.2.1]:5"),
    ];
    for version in [Version::V1, Version::V2] {
        for (client, local, source) in cases {
            let addrs = ConnAddrs {
                client: addr(client),
                local: addr(local),
            };
            let (h, _) = complete(&header(version, Some(addrs)));
            assert_eq!(h.source(), Some(addr(source)), "{version:?} {client}");
        }
    }
    assert_eq!(header(Version::V1, None), b"PROXY UNKNOWN\r\n");
    assert_eq!(complete(&header(Version::V2, None)).0, Header::Local);
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(Parsed::Complete { len, .. }) = parse(&bytes) {
            prop_assert!(len <= bytes.len());
        }
    }

    #[test]
    fn arbitrary_bytes_after_a_signature_never_panic(
        v1 in any::<bool>(),
        tail in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let mut bytes = if v1 { b"PROXY ".to_vec() } else { V2_SIGNATURE.to_vec() };
        bytes.extend_from_slice(&tail);
        if let Ok(Parsed::Complete { len, .. }) = parse(&bytes) {
            prop_assert!(len <= bytes.len());
        }
    }

    #[test]
    fn any_ipv4_pair_round_trips(a in any::<u32>(), b in any::<u32>(), p in any::<u16>(), q in any::<u16>(), v2 in any::<bool>()) {
        let addrs = ConnAddrs {
            client: SocketAddr::new(IpAddr::V4(Ipv4Addr::from(a)), p),
            local: SocketAddr::new(IpAddr::V4(Ipv4Addr::from(b)), q),
        };
        let version = if v2 { Version::V2 } else { Version::V1 };
        let wire = header(version, Some(addrs));
        prop_assert_eq!(
            parse(&wire),
            Ok(Parsed::Complete { header: Header::Proxied { source: addrs.client, dest: addrs.local }, len: wire.len() })
        );
    }
}
