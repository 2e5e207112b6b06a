//! Bytes a peer sends as a record envelope: validation must answer (never
//! panic), and anything it accepts must re-validate to the same id.
#![no_main]

use cirfed_fuzz::{record, FuzzTrust};
use libfuzzer_sys::fuzz_target;

const NOW: i64 = 1_800_000_000;

fuzz_target!(|data: &[u8]| {
    if let Ok(verified) = record::validate(data, &FuzzTrust, NOW) {
        let again = record::validate_envelope(verified.envelope.clone(), &FuzzTrust, NOW).expect("accepted once, accepted again");
        assert_eq!(again.id, verified.id);
    }
    let _ = record::validate_batch(vec![prost::Message::decode(data).unwrap_or_default()], &FuzzTrust, NOW);
});
