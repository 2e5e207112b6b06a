//! What the node tells the transport about trust, and what the transport
//! tells status back: revocations as they arrive, the CRL in force, and how
//! close the node's own certificate and card are to expiry.

use std::sync::Arc;

/// What changed in the federation's trust, as the peer service, the links
/// and the TLS configurations watch it.
#[derive(Debug, Clone, Default)]
pub struct TrustNews {
    /// Revocations stored since the node opened: a change means some member
    /// may now be cut off.
    pub revocations: u64,
    /// The operator's CRL (DER) carried by the latest revocation that had
    /// one; the TLS side verifies it before installing it.
    pub crl: Option<Arc<Vec<u8>>>,
}

/// The transport's standing, for `cirfed status`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransportTrust {
    /// The CRL in force: its number (0: none installed).
    pub crl_number: u64,
    /// Unix seconds.
    pub crl_this_update: i64,
    /// Unix seconds.
    pub crl_next_update: i64,
    /// Certificates it revokes.
    pub crl_revoked: u32,
    /// Where it came from: "file" (NODE/crl.pem) or "record" (a revocation).
    pub crl_source: String,
    /// Why the last CRL offered was refused (empty: none was).
    pub crl_refused: String,
    /// End of the node's TLS certificate, unix seconds.
    pub certificate_not_after: i64,
    /// End of the node's member card, unix seconds.
    pub card_valid_until: i64,
    /// What an operator should act on now: a stale CRL, an expiry ahead.
    pub warnings: Vec<String>,
}
