//! Who is on the other end of a peer connection: the member id the federation
//! CA wrote into the certificate's common name, whichever side dialed.

use tonic::{Request, Status};

/// A peer authenticated by its certificate.
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
    let member_id = member_id_of(leaf.as_ref()).map_err(|e| Status::unauthenticated(format!("client {e}")))?;
    Ok(PeerIdentity { member_id })
}

/// The member id in a verified certificate (DER).
pub fn member_id_of(der: &[u8]) -> Result<String, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| format!("certificate is unreadable: {e}"))?;
    let member_id = cert.subject().iter_common_name().next().and_then(|cn| cn.as_str().ok()).map(str::to_string);
    member_id.ok_or_else(|| "certificate has no member id".to_string())
}
