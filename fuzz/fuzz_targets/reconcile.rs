//! Bytes a peer sends during set reconciliation: both sides must answer or
//! refuse them, never panic, and a refused message must add no ids.
#![no_main]

use cirfed_fuzz::reconcile::{Initiator, Item, Responder};
use libfuzzer_sys::fuzz_target;

fn items() -> Vec<Item> {
    (0..64u8).map(|n| (u64::from(n) * 7, [n; 32])).collect()
}

fuzz_target!(|data: &[u8]| {
    let mut responder = Responder::new(items()).expect("a valid set");
    let _ = responder.respond(data);
    let mut initiator = Initiator::new(items()).expect("a valid set");
    initiator.initiate().expect("a first message");
    if initiator.step(data).is_err() {
        assert!(initiator.have().is_empty() && initiator.need().is_empty());
    }
});
