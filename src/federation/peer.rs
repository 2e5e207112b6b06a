//! Who is on the other end of a peer connection: the member id the federation
//! CA wrote into the client certificate's common name.

use tonic::{Request, Status};

/// A peer authenticated by its client certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    /// Pseudonymous member id (the certificate's common name).
    pub member_id: String,
}

/// The verified caller of a request. rustls has already checked the chain,
/// usage, validity and revocation; this only reads the name.
pub fn peer_identity<T>(request: &Request<T>) -> Result<PeerIdentity, Status> {
    let certs = request.peer_certs().ok_or_else(|| Status::unauthenticated("no client certificate"))?;
    let leaf = certs.first().ok_or_else(|| Status::unauthenticated("empty client certificate chain"))?;
    let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref())
        .map_err(|e| Status::unauthenticated(format!("unreadable client certificate: {e}")))?;
    let member_id = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .ok_or_else(|| Status::unauthenticated("client certificate has no member id"))?;
    Ok(PeerIdentity { member_id: member_id.to_string() })
}
