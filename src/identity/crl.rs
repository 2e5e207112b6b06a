//! The operator's certificate revocation list as a node sees it: a CRL is
//! installed only once it is authentic (parsed, issued and signed by the
//! federation CA) and current (this update not in the future, next update
//! not past). A CRL that fails either check never replaces the last good one.

use super::pki::{all_certs, parse_cert};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateRevocationListDer;

/// How far in the future a CRL's this_update may lie: the operator's clock
/// may run a little ahead of a node's.
pub const CRL_CLOCK_SKEW_SECS: i64 = 300;

/// Why a CRL was not installed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CrlError {
    #[error("not a readable crl: {0}")]
    Unreadable(String),
    #[error("crl is issued by {issuer}, not by the federation ca {ca}")]
    WrongIssuer { issuer: String, ca: String },
    #[error("crl signature does not verify with the federation ca key")]
    BadSignature,
    #[error("crl has no next update")]
    NoNextUpdate,
    #[error("crl this update {this_update} is in the future (now {now})")]
    NotYetValid { this_update: i64, now: i64 },
    #[error("crl next update {next_update} has passed (now {now})")]
    Expired { next_update: i64, now: i64 },
}

/// An authentic CRL: issued and signed by the federation CA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crl {
    /// DER, as signed.
    pub der: Vec<u8>,
    /// The CRL number; a CRL with a higher number supersedes one with a lower.
    pub number: u64,
    /// Unix seconds.
    pub this_update: i64,
    /// Unix seconds.
    pub next_update: i64,
    /// Certificates it revokes.
    pub revoked: usize,
}

impl Crl {
    /// PEM, as installed in the node directory.
    pub fn pem(&self) -> String {
        let body = base64_lines(&self.der);
        format!("-----BEGIN X509 CRL-----\n{body}-----END X509 CRL-----\n")
    }

    /// Checks that the CRL is current at `now`.
    pub fn check_current(&self, now: i64) -> Result<(), CrlError> {
        if self.this_update > now + CRL_CLOCK_SKEW_SECS {
            return Err(CrlError::NotYetValid { this_update: self.this_update, now });
        }
        if self.next_update <= now {
            return Err(CrlError::Expired { next_update: self.next_update, now });
        }
        Ok(())
    }

    /// True once the CRL's next update has passed.
    pub fn is_stale(&self, now: i64) -> bool {
        self.next_update <= now
    }
}

/// A CRL given as PEM or DER, authenticated against the federation CA
/// (any certificate of a CA bundle may be its issuer).
pub fn authenticate(bytes: &[u8], ca_pem: &str) -> Result<Crl, CrlError> {
    let der = match CertificateRevocationListDer::from_pem_slice(bytes) {
        Ok(der) => der.as_ref().to_vec(),
        Err(_) => bytes.to_vec(),
    };
    let (rest, crl) = x509_parser::parse_x509_crl(&der).map_err(|e| CrlError::Unreadable(e.to_string()))?;
    if !rest.is_empty() {
        return Err(CrlError::Unreadable(format!("{} bytes after the crl", rest.len())));
    }
    let cas = all_certs(ca_pem, "federation ca certificate").map_err(|e| CrlError::Unreadable(e.to_string()))?;
    let mut refusal = None;
    for ca_der in &cas {
        let ca = parse_cert(ca_der, "federation ca certificate").map_err(|e| CrlError::Unreadable(e.to_string()))?;
        if crl.issuer().as_raw() != ca.subject().as_raw() {
            refusal = Some(CrlError::WrongIssuer { issuer: crl.issuer().to_string(), ca: ca.subject().to_string() });
            continue;
        }
        // Same name, other key: a CA under the same name cannot pass for ours.
        if crl.verify_signature(ca.public_key()).is_err() {
            refusal = Some(CrlError::BadSignature);
            continue;
        }
        let next_update = crl.next_update().ok_or(CrlError::NoNextUpdate)?.timestamp();
        let number = crl.crl_number().map_or(0, |n| u64::try_from(n.clone()).unwrap_or(u64::MAX));
        return Ok(Crl {
            number,
            this_update: crl.last_update().timestamp(),
            next_update,
            revoked: crl.iter_revoked_certificates().count(),
            der: der.clone(),
        });
    }
    Err(refusal.unwrap_or(CrlError::BadSignature))
}

/// [`authenticate`], then checks that the CRL is current at `now`.
pub fn verify(bytes: &[u8], ca_pem: &str, now: i64) -> Result<Crl, CrlError> {
    let crl = authenticate(bytes, ca_pem)?;
    crl.check_current(now)?;
    Ok(crl)
}

fn base64_lines(der: &[u8]) -> String {
    use base64::Engine as _;
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::with_capacity(text.len() + text.len() / 64 + 1);
    for chunk in text.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ascii"));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::pki::{create_ca, create_crl};

    const HOUR: i64 = 3_600;

    fn now() -> i64 {
        crate::node::unix_now()
    }

    #[test]
    fn a_crl_from_the_federation_ca_is_authentic_and_current() {
        let ca = create_ca("fed", 30).unwrap();
        let pem = create_crl(&ca, &["0a1b".into(), "0c".into()], now() - 60, now() + HOUR, 42).unwrap();
        let crl = verify(pem.as_bytes(), &ca.cert_pem, now()).unwrap();
        assert_eq!((crl.number, crl.revoked), (42, 2));
        assert_eq!(authenticate(crl.pem().as_bytes(), &ca.cert_pem).unwrap(), crl, "pem round trip");
        assert_eq!(authenticate(&crl.der, &ca.cert_pem).unwrap(), crl, "der accepted too");
    }

    #[test]
    fn a_crl_signed_by_another_ca_under_the_same_name_is_refused() {
        let (ca, impostor) = (create_ca("fed", 30).unwrap(), create_ca("fed", 30).unwrap());
        let pem = create_crl(&impostor, &[], now() - 60, now() + HOUR, 1).unwrap();
        assert_eq!(verify(pem.as_bytes(), &ca.cert_pem, now()), Err(CrlError::BadSignature));
    }

    #[test]
    fn a_crl_from_a_ca_of_another_name_is_refused() {
        let (ca, other) = (create_ca("fed", 30).unwrap(), create_ca("other", 30).unwrap());
        let pem = create_crl(&other, &[], now() - 60, now() + HOUR, 1).unwrap();
        assert!(matches!(verify(pem.as_bytes(), &ca.cert_pem, now()), Err(CrlError::WrongIssuer { .. })));
    }

    #[test]
    fn an_expired_crl_or_one_from_the_future_is_refused() {
        let ca = create_ca("fed", 30).unwrap();
        let expired = create_crl(&ca, &[], now() - 2 * HOUR, now() - HOUR, 1).unwrap();
        assert!(matches!(verify(expired.as_bytes(), &ca.cert_pem, now()), Err(CrlError::Expired { .. })));
        let future = create_crl(&ca, &[], now() + HOUR, now() + 2 * HOUR, 1).unwrap();
        assert!(matches!(verify(future.as_bytes(), &ca.cert_pem, now()), Err(CrlError::NotYetValid { .. })));
        let skewed = create_crl(&ca, &[], now() + CRL_CLOCK_SKEW_SECS / 2, now() + HOUR, 1).unwrap();
        assert!(verify(skewed.as_bytes(), &ca.cert_pem, now()).is_ok(), "within the allowed skew");
    }

    #[test]
    fn garbage_is_not_a_crl() {
        let ca = create_ca("fed", 30).unwrap();
        assert!(matches!(authenticate(b"not a crl", &ca.cert_pem), Err(CrlError::Unreadable(_))));
    }
}
