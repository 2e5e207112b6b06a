//! cirfed's domain modules and its reconciliation core, compiled on their
//! own for fuzzing.

#[path = "../../src/cir.rs"]
pub mod cir;
#[path = "../../src/normalize.rs"]
pub mod normalize;
#[path = "../../src/record/mod.rs"]
pub mod record;
#[path = "../../src/federation/reconcile.rs"]
pub mod reconcile;

/// The generated record messages.
pub mod proto {
    #![allow(clippy::all)]
    include!(concat!(env!("OUT_DIR"), "/cirfed.v1.rs"));
}

use record::{Membership, Trust};

/// A trust anchor set with one member key, so that fuzzed records can get
/// past the membership check to the signature and body checks.
pub struct FuzzTrust;

impl Trust for FuzzTrust {
    fn authority(&self) -> [u8; 32] {
        [0x11; 32]
    }

    fn membership(&self, _key: &[u8; 32]) -> Option<Membership> {
        Some(Membership {
            member_id: "m-fuzz".into(),
            roles: vec![cir::Role::Publish, cir::Role::Read],
            valid_from: 0,
            valid_until: i64::MAX,
            revoked_at: None,
        })
    }
}
