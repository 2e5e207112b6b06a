//! Observable values as they arrive inside peer records and lookups:
//! normalisation never panics and is idempotent.
#![no_main]

use cirfed_fuzz::normalize::{self, ObservableType};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for kind in ObservableType::ALL {
        if let Ok(canonical) = normalize::normalize(kind, text) {
            assert_eq!(normalize::normalize(kind, &canonical).as_ref(), Ok(&canonical), "{kind} not idempotent");
        }
    }
    if let Ok(observable) = normalize::detect(text) {
        assert!(normalize::is_canonical(observable.kind, &observable.value));
    }
});
