//! What switchyard itself does with a client's request head before and
//! around Pingora's parser: the raw-head checks, target normalisation and
//! host extraction. Any bytes: no panic, and normalised paths keep their
//! invariants.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard::http_guard::raw;
use switchyard::router::{normalize_host, normalize_path, prefix_matches};

fuzz_target!(|data: &[u8]| {
    let _ = raw::problem(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let host = normalize_host(text);
        assert!(!host.bytes().any(|b| b.is_ascii_uppercase()));
        if text.starts_with('/') {
            let path = normalize_path(text);
            assert!(path.starts_with('/'), "{path:?}");
            assert!(!path.split('/').any(|s| s == ".."), "{path:?}");
            let _ = prefix_matches("/api", &path);
        }
    }
});
