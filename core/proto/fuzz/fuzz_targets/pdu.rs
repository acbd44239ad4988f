//! Any bytes, under any stable room version (chosen by the first byte): PDU
//! parsing never panics, and an accepted PDU can be hashed, redacted and
//! given an event ID, with redaction keeping the reference hash.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_proto::hashes::{content_hash, event_id, reference_hash};
use tessera_proto::pdu::Pdu;
use tessera_proto::redaction::redact;
use tessera_proto::room_version::STABLE;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else { return };
    let rules = &STABLE[usize::from(selector) % STABLE.len()];
    if let Ok(pdu) = Pdu::parse(bytes, rules) {
        let _ = content_hash(pdu.json());
        let redacted = redact(pdu.json(), rules);
        assert_eq!(reference_hash(&redacted, rules), reference_hash(pdu.json(), rules));
        let _ = event_id(pdu.json(), rules);
    }
});
