//! Any bytes: the parser returns a value or an error, never panics, and
//! whatever it accepts re-encodes to canonical JSON that parses back to the
//! same value and encodes to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_proto::canonical_json::{parse, to_bytes};

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = parse(data) {
        let canonical = to_bytes(&value);
        let reparsed = parse(&canonical).expect("canonical output must parse");
        assert_eq!(reparsed, value);
        assert_eq!(to_bytes(&reparsed), canonical);
    }
});
