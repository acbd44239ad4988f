//! The HTTP/1.1 request parser (heads, framing, chunked bodies) must never
//! panic, whatever a client sends. Run briefly with
//! `cd net/fuzz && cargo fuzz run http_request -- -max_total_time=60`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tessera_net::http::fuzzing::parse_stream(data);
});
