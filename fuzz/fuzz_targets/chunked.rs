//! Chunked bodies, from a client or an upstream: decoded whole and in small pieces.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // The first byte chooses the piece size; the rest is the body.
    let Some((&step, body)) = data.split_first() else { return };
    weir_proxy::fuzzing::chunked(body, step as usize);
});
