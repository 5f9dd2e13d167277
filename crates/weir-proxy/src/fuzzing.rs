//! Entry points for `fuzz/` (cargo-fuzz): the HTTP/1.1 parsers a client or an upstream
//! controls, each with the invariants a fuzzer can check. Hidden from the docs: not
//! an API.

use bytes::BytesMut;

use crate::h1::chunked::{Decoded, Decoder};
use crate::h1::head;

/// Parses `data` as a request head, whole and then fed in two pieces at `split`:
/// never panics, consumes only what it parsed, and the split changes nothing.
pub fn request_head(data: &[u8], split: usize) {
    let mut whole = BytesMut::from(data);
    let at_once = head::parse_request(&mut whole);
    if let Ok(Some(h)) = &at_once {
        assert!(whole.len() < data.len(), "a parsed head consumed its bytes");
        assert!(data.len() - whole.len() <= head::MAX_HEAD, "a head over the limit was accepted");
        // What a parsed head says about its body is consistent.
        let _ = (&h.method, &h.uri, h.version, h.framing, h.keep_alive);
    }
    let split = split % (data.len() + 1);
    let mut buf = BytesMut::from(&data[..split]);
    let first = head::parse_request(&mut buf);
    buf.extend_from_slice(&data[split..]);
    let piecewise = match first {
        Ok(None) => head::parse_request(&mut buf),
        other => other,
    };
    match (&at_once, &piecewise) {
        (Ok(Some(a)), Ok(Some(b))) => {
            assert_eq!((&a.method, &a.uri, a.version, a.framing), (&b.method, &b.uri, b.version, b.framing));
            assert_eq!(a.headers, b.headers);
            assert_eq!(whole, buf, "the same bytes are left for the body");
        }
        // An invalid prefix makes the whole invalid; a head complete in the prefix is
        // the same head.
        (Ok(None), Ok(None)) => {}
        (Err(a), Err(b)) => assert_eq!(a, b),
        (a, b) => panic!("whole {a:?} != in two pieces {b:?}"),
    }
}

/// Decodes `data` as a chunked body, whole and then in pieces of `step` bytes: never
/// panics, and the data, trailers and outcome are the same however the bytes arrive.
pub fn chunked(data: &[u8], step: usize) {
    let whole = decode_all(data, data.len().max(1));
    let pieces = decode_all(data, step % 17 + 1);
    assert_eq!(whole, pieces, "decoding depends on how the bytes arrive");
}

/// The data, trailers and end (or error) of a body, fed `step` bytes at a time.
fn decode_all(data: &[u8], step: usize) -> (Vec<u8>, Option<http::HeaderMap>, Result<bool, String>) {
    let mut d = Decoder::new();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut fed = 0;
    loop {
        match d.decode(&mut buf) {
            Ok(Decoded::Data(b)) => {
                assert!(!b.is_empty(), "no empty data frames");
                out.extend_from_slice(&b);
            }
            Ok(Decoded::Trailers(t)) => return (out, Some(t), Ok(true)),
            Ok(Decoded::End) => return (out, None, Ok(true)),
            Ok(Decoded::More) => {
                if fed >= data.len() {
                    return (out, None, Ok(false));
                }
                let n = step.min(data.len() - fed);
                buf.extend_from_slice(&data[fed..fed + n]);
                fed += n;
            }
            Err(e) => return (out, None, Err(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_fuzz_entry_points_accept_valid_and_hostile_input() {
        super::request_head(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 7);
        super::request_head(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nPOST / HTTP/1.1\r\n", 27);
        super::request_head(b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 30);
        super::chunked(b"5\r\nhello\r\n3;x=y\r\nabc\r\n0\r\nt: 1\r\n\r\n", 1);
        super::chunked(b"5\r\nhel", 2);
        super::chunked(b"zz\r\n", 0);
    }
}
