//! Renewal: a member asks for a new TLS certificate and member card before
//! its admission expires, with the same member id, and installs them with no
//! downtime (the running node takes them from its next handshake).
//!
//! `cirfed node renew` makes a new TLS key (kept beside the current one until
//! the renewal is installed) and a request signed with the member's signing
//! key; `cirfed federation admit --renew` answers it; `cirfed node join`
//! installs the answer.
//!
//! With `--rotate-signing-key` the renewal also moves the member to a new
//! signing key: the new card replaces the old key from a time on, so records
//! the old key signed before then stay valid and later ones are refused.

use super::{
    authority_record, io_error, keys, member_id_of_admission, pki, read_json, Admission, CertUsage, Federation,
    IdentityError, SIGNING_KEY_FILE, TLS_KEY_FILE,
};
use crate::cir::Role;
use crate::proto::{record::Body, MemberCard};
use base64::Engine as _;
use ed25519_dalek::{Signature, SigningKey, Verifier, VerifyingKey};
use prost::Message;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The renewal request `node renew` writes.
pub const RENEWAL_REQUEST_FILE: &str = "renewal-request.json";
/// The new TLS key, waiting for the renewed certificate.
pub const NEXT_TLS_KEY_FILE: &str = "keys/tls.key.next";
/// The new signing key of a rotation, waiting for the card that names it.
pub const NEXT_SIGNING_KEY_FILE: &str = "keys/signing.key.next";
/// How long after the operator answers a rotation the old signing key stays
/// valid: the node signs with it until it installs the renewal. A key that
/// may be compromised is revoked instead, which takes effect at once.
pub const KEY_ROTATION_GRACE_SECS: i64 = 86_400;
/// Domain separation for the renewal request's signatures.
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
    /// Hex signature over member id, CSR and new signing key by the current signing key.
    pub proof: String,
    /// Hex ed25519 key the member moves to (signing-key rotation), or empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub new_signing_key: String,
    /// Hex signature over the same message by the new key: the member holds it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub new_key_proof: String,
}

/// `cirfed node renew`: a new TLS key and a renewal request, signed with the
/// node's signing key; with `rotate_signing_key`, a new signing key too. The
/// current keys and certificate stay in use until the renewal is installed.
pub fn renew_node(dir: &Path, force: bool, rotate_signing_key: bool) -> Result<RenewalRequest, IdentityError> {
    let current = super::load_node(dir)?;
    let hosts = pki::cert_info(&current.admission.certificate)?.sans;
    let member_id = current.admission.member_id.clone();
    let (tls_key, csr) = pki::create_node_key_and_csr(&member_id, &hosts)?;
    let next_signing = rotate_signing_key.then(keys::generate_signing_key);
    if let Some(next) = &next_signing {
        keys::write_signing_key(&dir.join(NEXT_SIGNING_KEY_FILE), next, force)?;
    } else if dir.join(NEXT_SIGNING_KEY_FILE).exists() && force {
        std::fs::remove_file(dir.join(NEXT_SIGNING_KEY_FILE))
            .map_err(|e| io_error("remove", &dir.join(NEXT_SIGNING_KEY_FILE), e))?;
    }
    keys::write_secret(&dir.join(NEXT_TLS_KEY_FILE), tls_key.as_bytes(), force)?;
    let new_signing_key = next_signing.as_ref().map(|k| hex::encode(k.verifying_key().as_bytes())).unwrap_or_default();
    let message = proof_message(&member_id, &csr, &new_signing_key);
    let proof = ed25519_dalek::Signer::sign(&current.signing, &message);
    let new_key_proof =
        next_signing.map(|k| hex::encode(ed25519_dalek::Signer::sign(&k, &message).to_bytes())).unwrap_or_default();
    let request = RenewalRequest {
        member_id,
        signing_key: hex::encode(current.signing.verifying_key().as_bytes()),
        csr,
        proof: hex::encode(proof.to_bytes()),
        new_signing_key,
        new_key_proof,
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
        let message = proof_message(&request.member_id, &request.csr, &request.new_signing_key);
        verify_proof(&key, &message, &request.proof, "the member's registered signing key")?;
        let rotated = match request.new_signing_key.as_str() {
            "" => None,
            hex_key => {
                let new = parse_key(hex_key)?;
                verify_proof(&new, &message, &request.new_key_proof, "the new signing key")?;
                Some(new)
            }
        };
        let issued =
            pki::issue_node_cert(&self.ca, &request.csr, &request.member_id, valid_days, CertUsage::ClientAndServer)?;
        let valid_from = now - now.rem_euclid(DAY_SECS);
        let valid_until = valid_from + i64::from(valid_days) * DAY_SECS;
        let card = MemberCard {
            member_id: request.member_id.clone(),
            signing_key: rotated.unwrap_or(key).to_bytes().to_vec(),
            roles: roles.iter().map(|r| r.code()).collect(),
            valid_from,
            valid_until,
            replaces_key: rotated.map(|_| key.to_bytes().to_vec()).unwrap_or_default(),
            replaces_from: rotated.map_or(0, |_| now + KEY_ROTATION_GRACE_SECS),
        };
        let (_, card) = self.authority.seal(authority_record(valid_from, Body::MemberCard(card)));
        let line = serde_json::json!({
            "member_id": request.member_id, "renewal": true,
            "signing_key": rotated.map_or_else(|| request.signing_key.clone(), |k| hex::encode(k.as_bytes())),
            "rotated_from": rotated.map(|_| request.signing_key.clone()),
            "certificate_serial": issued.serial_hex, "valid_until": valid_until,
        });
        super::operator::append_line(&self.dir.join(super::MEMBERS_FILE), &line)?;
        let (sharing_key, sharing_epochs) = self.sharing_fields();
        Ok(Admission {
            federation: self.file.clone(),
            member_id: request.member_id.clone(),
            certificate: issued.cert_pem,
            card: base64::engine::general_purpose::STANDARD.encode(card.encode_to_vec()),
            sharing_key,
            sharing_epochs,
        })
    }
}

/// The signing key `admission`'s card must be for: the rotation's new key
/// when one waits and the card names it, else the current one.
pub(super) fn signing_key_for(dir: &Path, admission: &Admission) -> Result<SigningKey, IdentityError> {
    let next_path = dir.join(NEXT_SIGNING_KEY_FILE);
    if next_path.exists() {
        let next = keys::read_signing_key(&next_path)?;
        if card_key(admission)? == next.verifying_key().to_bytes() {
            return Ok(next);
        }
    }
    Ok(keys::read_signing_key(&dir.join(SIGNING_KEY_FILE))?)
}

fn card_key(admission: &Admission) -> Result<[u8; 32], IdentityError> {
    let record = crate::proto::Record::decode(admission.card_envelope()?.record.as_slice())
        .map_err(|e| IdentityError::BadAdmission(format!("card record: {e}")))?;
    match record.body {
        Some(Body::MemberCard(card)) => <[u8; 32]>::try_from(card.signing_key.as_slice())
            .map_err(|_| IdentityError::BadAdmission("card signing key is not 32 bytes".into())),
        _ => Err(IdentityError::BadAdmission("card is not a member card".into())),
    }
}

/// When `admission` renews the node in `dir` (same member, certificate for
/// the waiting new TLS key), puts that key in place, and the new signing key
/// when the card names it; true when it did. The admission is written after.
pub(super) fn install_renewed_key(dir: &Path, admission: &Admission) -> Result<bool, IdentityError> {
    let next_path = dir.join(NEXT_TLS_KEY_FILE);
    if !next_path.exists() {
        return Ok(false);
    }
    let next = String::from_utf8(keys::read_secret(&next_path)?).map_err(|_| IdentityError::BadFile {
        path: next_path.clone(),
        what: "TLS key",
        reason: "not UTF-8 PEM".into(),
    })?;
    if !pki::cert_public_key_matches(&admission.certificate, &next)? {
        return Ok(false);
    }
    if member_id_of_admission(dir)?.as_deref() != Some(admission.member_id.as_str()) {
        return Err(IdentityError::BadAdmission("a renewal must keep the node's member id".into()));
    }
    let signing_path = dir.join(NEXT_SIGNING_KEY_FILE);
    if signing_path.exists() {
        let signing = keys::read_signing_key(&signing_path)?;
        if card_key(admission)? == signing.verifying_key().to_bytes() {
            keys::write_signing_key(&dir.join(SIGNING_KEY_FILE), &signing, true)?;
            std::fs::remove_file(&signing_path).map_err(|e| io_error("remove", &signing_path, e))?;
        }
    }
    keys::write_secret(&dir.join(TLS_KEY_FILE), next.as_bytes(), true)?;
    std::fs::remove_file(&next_path).map_err(|e| io_error("remove", &next_path, e))?;
    Ok(true)
}

fn parse_key(hex_key: &str) -> Result<VerifyingKey, IdentityError> {
    hex::decode(hex_key)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .and_then(|b| VerifyingKey::from_bytes(&b).ok())
        .ok_or_else(|| IdentityError::BadRequest("new_signing_key is not a hex ed25519 public key".into()))
}

fn verify_proof(key: &VerifyingKey, message: &[u8], proof: &str, by: &str) -> Result<(), IdentityError> {
    let proof = hex::decode(proof)
        .ok()
        .and_then(|b| Signature::from_slice(&b).ok())
        .ok_or_else(|| IdentityError::BadRequest(format!("the proof by {by} is not a hex ed25519 signature")))?;
    VerifyingKey::verify(key, message, &proof)
        .map_err(|_| IdentityError::BadRequest(format!("proof does not verify with {by}")))
}

fn proof_message(member_id: &str, csr: &str, new_signing_key: &str) -> Vec<u8> {
    [RENEWAL_PROOF_DOMAIN, member_id.as_bytes(), b"\0", csr.as_bytes(), b"\0", new_signing_key.as_bytes()].concat()
}
