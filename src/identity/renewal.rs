//! Renewal: a member asks for a new TLS certificate and member card before
//! its admission expires, with the same member id, and installs them with no
//! downtime (the running node takes them from its next handshake).
//!
//! `cirfed node renew` makes a new TLS key (kept beside the current one until
//! the renewal is installed) and a request signed with the member's signing
//! key; `cirfed federation admit --renew` answers it; `cirfed node join`
//! installs the answer.

use super::{
    io_error, keys, member_id_of_admission, pki, read_json, Admission, Federation, IdentityError, CertUsage,
    TLS_KEY_FILE,
};
use crate::cir::Role;
use base64::Engine as _;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use prost::Message;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The renewal request `node renew` writes.
pub const RENEWAL_REQUEST_FILE: &str = "renewal-request.json";
/// The new TLS key, waiting for the renewed certificate.
pub const NEXT_TLS_KEY_FILE: &str = "keys/tls.key.next";
/// Domain separation for the renewal request's signature.
const RENEWAL_PROOF_DOMAIN: &[u8] = b"cirfed/renew/v1\0";
const DAY_SECS: i64 = 86_400;

/// What a member sends the operator to renew its admission.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenewalRequest {
    /// The member id being renewed.
    pub member_id: String,
    /// Hex ed25519 key the member signs records with (the registered one).
    pub signing_key: String,
    /// PEM CSR for the new TLS key.
    pub csr: String,
    /// Hex signature over member id and CSR by the signing key.
    pub proof: String,
}

/// `cirfed node renew`: a new TLS key and a renewal request, signed with the
/// node's signing key. The current key and certificate stay in use until the
/// renewal is installed.
pub fn renew_node(dir: &Path, force: bool) -> Result<RenewalRequest, IdentityError> {
    let current = super::load_node(dir)?;
    let hosts = pki::cert_info(&current.admission.certificate)?.sans;
    let member_id = current.admission.member_id.clone();
    let (tls_key, csr) = pki::create_node_key_and_csr(&member_id, &hosts)?;
    keys::write_secret(&dir.join(NEXT_TLS_KEY_FILE), tls_key.as_bytes(), force)?;
    let proof = ed25519_dalek::Signer::sign(&current.signing, &proof_message(&member_id, &csr));
    let request = RenewalRequest {
        member_id,
        signing_key: hex::encode(current.signing.verifying_key().as_bytes()),
        csr,
        proof: hex::encode(proof.to_bytes()),
    };
    let json = serde_json::to_string_pretty(&request).expect("renewal request serializes");
    keys::write_public(&dir.join(RENEWAL_REQUEST_FILE), json.as_bytes(), true)?;
    Ok(request)
}

/// Reads a renewal request file.
pub fn read_renewal_request(path: &Path) -> Result<RenewalRequest, IdentityError> {
    read_json(path, "renewal request")
}

impl Federation {
    /// `cirfed federation admit --renew`: a new certificate and card for an
    /// admitted, unrevoked member whose registered signing key signed the request.
    pub fn renew(
        &self,
        request: &RenewalRequest,
        roles: &[Role],
        valid_days: u32,
        now: i64,
    ) -> Result<Admission, IdentityError> {
        if self.is_revoked(&request.member_id)? {
            return Err(IdentityError::BadRequest(format!("member {} is revoked", request.member_id)));
        }
        let key = self.member_key(&request.member_id)?;
        if hex::encode(key.as_bytes()) != request.signing_key {
            return Err(IdentityError::BadRequest("signing_key is not the member's registered key".into()));
        }
        let proof = hex::decode(&request.proof)
            .ok()
            .and_then(|b| Signature::from_slice(&b).ok())
            .ok_or_else(|| IdentityError::BadRequest("proof is not a hex ed25519 signature".into()))?;
        VerifyingKey::verify(&key, &proof_message(&request.member_id, &request.csr), &proof).map_err(|_| {
            IdentityError::BadRequest("proof does not verify with the member's registered signing key".into())
        })?;
        let issued =
            pki::issue_node_cert(&self.ca, &request.csr, &request.member_id, valid_days, CertUsage::ClientAndServer)?;
        let valid_from = now - now.rem_euclid(DAY_SECS);
        let valid_until = valid_from + i64::from(valid_days) * DAY_SECS;
        let (_, card) = self.sign_card(&request.member_id, &key, roles, valid_from, valid_until);
        let line = serde_json::json!({
            "member_id": request.member_id, "renewal": true, "signing_key": request.signing_key,
            "certificate_serial": issued.serial_hex, "valid_until": valid_until,
        });
        super::operator::append_line(&self.dir.join(super::MEMBERS_FILE), &line)?;
        Ok(Admission {
            federation: self.file.clone(),
            member_id: request.member_id.clone(),
            certificate: issued.cert_pem,
            card: base64::engine::general_purpose::STANDARD.encode(card.encode_to_vec()),
            sharing_key: hex::encode(self.sharing_key),
        })
    }
}

/// When `admission` renews the node in `dir` (same member, certificate for
/// the waiting new TLS key), puts that key in place; true when it did.
pub(super) fn install_renewed_key(dir: &Path, admission: &Admission) -> Result<bool, IdentityError> {
    let next_path = dir.join(NEXT_TLS_KEY_FILE);
    if !next_path.exists() {
        return Ok(false);
    }
    let next = String::from_utf8(keys::read_secret(&next_path)?)
        .map_err(|_| IdentityError::BadFile { path: next_path.clone(), what: "TLS key", reason: "not UTF-8 PEM".into() })?;
    if !pki::cert_public_key_matches(&admission.certificate, &next)? {
        return Ok(false);
    }
    if member_id_of_admission(dir)?.as_deref() != Some(admission.member_id.as_str()) {
        return Err(IdentityError::BadAdmission("a renewal must keep the node's member id".into()));
    }
    keys::write_secret(&dir.join(TLS_KEY_FILE), next.as_bytes(), true)?;
    std::fs::remove_file(&next_path).map_err(|e| io_error("remove", &next_path, e))?;
    Ok(true)
}

fn proof_message(member_id: &str, csr: &str) -> Vec<u8> {
    [RENEWAL_PROOF_DOMAIN, member_id.as_bytes(), b"\0", csr.as_bytes()].concat()
}
