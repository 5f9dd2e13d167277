//! HTTP/1.1 request heads as a client sends them: parsed whole and in two pieces.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // The first two bytes choose where the head is split; the rest is the head.
    if data.len() < 2 {
        return;
    }
    let split = u16::from_le_bytes([data[0], data[1]]) as usize;
    weir_proxy::fuzzing::request_head(&data[2..], split);
});
