//! STIX tests over a feed in memory (no node): export, import and the round
//! trip cirfed -> STIX -> cirfed.

mod export;
mod feed;
mod import;
mod roundtrip;
