//! Fuzzes the metrics endpoint's request-head parser (`loadtest::http_request::parse_head`):
//! any bytes give `Ok(None)` (incomplete), a head, or a typed refusal, never a panic; an
//! accepted head has a path in origin form and a version the endpoint speaks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use locus::loadtest::http_request::{MAX_REQUEST_HEAD, RequestError, parse_head};

fuzz_target!(|data: &[u8]| {
    match parse_head(data) {
        Ok(Some(head)) => {
            assert!(head.path.starts_with('/'), "{head:?}");
            assert!(!head.path.contains('?'), "{head:?}");
            assert!(head.version == "HTTP/1.1" || head.version == "HTTP/1.0", "{head:?}");
            assert!(!head.method.is_empty(), "{head:?}");
        }
        Ok(None) => assert!(data.len() <= MAX_REQUEST_HEAD + 4),
        Err(RequestError::TooLarge | RequestError::Malformed(_)) => {}
    }
});
