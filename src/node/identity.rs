//! Who this node is, and the keys it signs and hashes with: swapped whole
//! while running when a renewal rotates the signing or sharing keys.

use super::{Node, NodeError};
use crate::anonymize::Scrubber;
use crate::identity::sharing::SharingKeys;
use crate::record::Signer;
use std::sync::Arc;

/// Who this node is in the federation.
pub struct NodeIdentity {
    /// Pseudonymous member id from the node's card.
    pub member_id: String,
    /// Signs what this node publishes.
    pub signer: Signer,
    /// The federation authority's public key.
    pub authority: [u8; 32],
    /// The federation's keyed-hash keys by epoch (see `anonymize::keyed_hash`).
    pub sharing: SharingKeys,
}

/// Who signs what this node publishes, and the scrubber that hashes under
/// its current sharing key: one pair, so a batch never mixes them.
#[derive(Clone)]
pub(crate) struct Issuer {
    pub(crate) identity: Arc<NodeIdentity>,
    pub(crate) scrubber: Arc<Scrubber>,
}

impl Issuer {
    pub(super) fn new(identity: NodeIdentity, policy: &crate::anonymize::ScrubPolicy) -> Issuer {
        let scrubber = Scrubber::new(policy, identity.sharing.current().key);
        Issuer { identity: Arc::new(identity), scrubber: Arc::new(scrubber) }
    }
}

impl Node {
    /// This node's identity, as of now (a renewal may swap it).
    pub fn identity(&self) -> Arc<NodeIdentity> {
        self.issuer().identity
    }

    /// Who signs now, with the matching scrubber.
    pub(super) fn issuer(&self) -> Issuer {
        self.issuer.read().expect("issuer lock").clone()
    }

    /// Takes a renewed identity while running: from now on the node signs
    /// with its signing key and hashes under its current sharing epoch, and
    /// lookups match under every epoch it holds.
    pub fn adopt_identity(&self, identity: NodeIdentity) -> Result<(), NodeError> {
        let current = self.identity();
        if identity.member_id != current.member_id || identity.authority != current.authority {
            return Err(NodeError::IdentityChanged(format!("{} became {}", current.member_id, identity.member_id)));
        }
        let keys = identity.sharing.all().iter().map(|k| k.key).collect();
        *self.issuer.write().expect("issuer lock") = Issuer::new(identity, &self.publish.scrub);
        self.engine.write().expect("engine lock").set_hash_keys(keys);
        Ok(())
    }
}
