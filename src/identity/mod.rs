//! Identity and joining: the federation authority and CA (operator side), the
//! node's keys, join request and admission (member side).
//!
//! Two keys per node: an ed25519 signing key for content (vouched for by a
//! member card from the authority) and a TLS key for transport (certified by
//! the federation CA). Neither names the organisation; the operator alone keeps
//! the mapping from member id to CSP.

pub mod crl;
pub mod keys;
pub mod operator;
pub mod pki;
pub mod renewal;
pub mod sharing;

use crate::cir::{Role, Tlp};
use crate::config::{ConfigFile, CONFIG_FILE};
use crate::proto::{record::Body, Envelope, MemberCard, MemberRevocation, Record};
use crate::record::{self, RecordId, Signer};
use base64::Engine as _;
use ed25519_dalek::{Signature, SigningKey, Verifier, VerifyingKey};
use keys::KeyFileError;
use pki::{CertUsage, FederationCa, PkiError};
use prost::Message;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Federation file: the public trust anchors every node installs.
pub const FEDERATION_FILE: &str = "federation.toml";
/// Authority ed25519 key, operator only.
pub const AUTHORITY_KEY_FILE: &str = "authority.key";
/// Federation CA key, operator only.
pub const CA_KEY_FILE: &str = "ca.key";
/// Federation CA certificate.
pub const CA_CERT_FILE: &str = "ca.crt";
/// The operator's private register of member id -> organisation.
pub const MEMBERS_FILE: &str = "members.jsonl";
/// Node signing key.
pub const SIGNING_KEY_FILE: &str = "keys/signing.key";
/// Node TLS key.
pub const TLS_KEY_FILE: &str = "keys/tls.key";
/// Join request a node sends to the operator.
pub const JOIN_REQUEST_FILE: &str = "join-request.json";
/// Admission installed by `node join`.
pub const ADMISSION_FILE: &str = "admission.json";
/// The operator's secret keyed-hash key, handed to members in their admission.
pub const SHARING_KEY_FILE: &str = "sharing.key";
/// The operator's certificate revocation list, installed in the node directory.
pub const CRL_FILE: &str = "crl.pem";
/// Where the store lives inside a node directory.
pub const DATA_DIR: &str = "data";
/// Default lifetime of the federation CA.
pub const CA_VALID_DAYS: u32 = 3650;
/// Default lifetime of an admission (TLS certificate and member card).
pub const DEFAULT_ADMISSION_DAYS: u32 = 365;
/// Member cards start and end on day boundaries so that a coarsened
/// `created_at` never falls before the card.
const DAY_SECS: i64 = 86_400;
/// Domain separation for the join request's proof of key possession.
const JOIN_PROOF_DOMAIN: &[u8] = b"cirfed/join/v1\0";

/// Identity failures.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error(transparent)]
    KeyFile(#[from] KeyFileError),
    #[error(transparent)]
    Pki(#[from] PkiError),
    #[error("cannot {action} {path}: {reason}")]
    Io { action: &'static str, path: PathBuf, reason: String },
    #[error("{path} is not a valid {what}: {reason}")]
    BadFile { path: PathBuf, what: &'static str, reason: String },
    #[error("{0} already holds a federation; pass --force to replace it")]
    FederationExists(PathBuf),
    #[error("{0} already holds a node; pass --force to replace it")]
    NodeExists(PathBuf),
    #[error("{0} has not joined a federation yet: run `cirfed node join`")]
    NotJoined(PathBuf),
    #[error("join request refused: {0}")]
    BadRequest(String),
    #[error("admission refused: {0}")]
    BadAdmission(String),
}

/// The public trust anchors of a federation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FederationFile {
    /// Human name of the federation.
    pub name: String,
    /// Hex ed25519 public key of the authority that signs member cards.
    pub authority_key: String,
    /// PEM of the federation CA that certifies node TLS keys.
    pub ca_cert: String,
}

impl FederationFile {
    /// The authority key as bytes.
    pub fn authority(&self) -> Result<[u8; 32], IdentityError> {
        hex::decode(&self.authority_key)
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| IdentityError::BadAdmission("authority_key is not a 32-byte hex key".into()))
    }
}

/// What a node sends to the operator to ask for admission.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinRequest {
    /// The name the CSP gives itself; seen by the operator only.
    pub name: String,
    /// Host names and addresses the node's certificate should carry.
    pub hosts: Vec<String>,
    /// Hex ed25519 public key the node will sign records with.
    pub signing_key: String,
    /// PEM certificate signing request for the node's TLS key.
    pub csr: String,
    /// Hex signature over the CSR by the signing key: proof that the
    /// requester holds it.
    pub proof: String,
}

/// What the operator returns: everything a node needs to take part.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Admission {
    /// Trust anchors.
    pub federation: FederationFile,
    /// The node's pseudonymous member id.
    pub member_id: String,
    /// PEM TLS certificate (client and server auth).
    pub certificate: String,
    /// Base64 envelope of the member card signed by the authority.
    pub card: String,
    /// Hex of the federation's keyed-hash key: members share sensitive values
    /// as HMACs under it, so only members can match them. A secret: the
    /// admission is written mode 0600.
    #[serde(default)]
    pub sharing_key: String,
    /// Every sharing-key epoch the member may match under, current last
    /// (see `sharing`); empty in admissions from before epochs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sharing_epochs: Vec<sharing::EpochEntry>,
}

impl Admission {
    /// The member card envelope.
    pub fn card_envelope(&self) -> Result<Envelope, IdentityError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&self.card)
            .map_err(|e| IdentityError::BadAdmission(format!("card is not base64: {e}")))?;
        Envelope::decode(bytes.as_slice())
            .map_err(|e| IdentityError::BadAdmission(format!("card is not an envelope: {e}")))
    }
}

/// The pseudonymous member id of a signing key.
pub fn member_id(signing_key: &VerifyingKey) -> String {
    format!("m-{}", &hex::encode(Sha256::digest(signing_key.as_bytes()))[..16])
}

/// The federation operator's side: CA, authority key and member register.
pub struct Federation {
    dir: PathBuf,
    file: FederationFile,
    ca: FederationCa,
    authority: Signer,
    /// The secret keyed-hash keys handed to every admitted member, by epoch.
    sharing: sharing::SharingKeys,
}

impl Federation {
    /// `cirfed federation init`: creates the CA, the authority key and the federation file.
    pub fn init(dir: &Path, name: &str, force: bool) -> Result<Federation, IdentityError> {
        if dir.join(FEDERATION_FILE).exists() && !force {
            return Err(IdentityError::FederationExists(dir.to_path_buf()));
        }
        let ca = pki::create_ca(name, CA_VALID_DAYS)?;
        let authority = keys::generate_signing_key();
        keys::write_signing_key(&dir.join(AUTHORITY_KEY_FILE), &authority, force)?;
        keys::write_secret(&dir.join(CA_KEY_FILE), ca.key_pem.as_bytes(), force)?;
        keys::write_public(&dir.join(CA_CERT_FILE), ca.cert_pem.as_bytes(), force)?;
        let file = FederationFile {
            name: name.to_string(),
            authority_key: hex::encode(authority.verifying_key().as_bytes()),
            ca_cert: ca.cert_pem.clone(),
        };
        let sharing_key: [u8; 32] = rand::random();
        keys::write_secret(&dir.join(SHARING_KEY_FILE), hex::encode(sharing_key).as_bytes(), force)?;
        let sharing =
            sharing::SharingKeys::new(vec![sharing::SharingKey { epoch: sharing::FIRST_EPOCH, key: sharing_key }])?;
        let operator = toml::to_string_pretty(&operator::OperatorConfig::default()).expect("serializes");
        keys::write_public(&dir.join(operator::OPERATOR_FILE), operator.as_bytes(), force)?;
        keys::write_public(&dir.join(FEDERATION_FILE), to_toml(&file).as_bytes(), force)?;
        Ok(Federation { dir: dir.to_path_buf(), file, ca, authority: Signer::new(authority), sharing })
    }

    /// Opens an initialised federation directory.
    pub fn open(dir: &Path) -> Result<Federation, IdentityError> {
        let file: FederationFile = read_toml(&dir.join(FEDERATION_FILE), "federation file")?;
        let authority = keys::read_signing_key(&dir.join(AUTHORITY_KEY_FILE))?;
        let key_pem = String::from_utf8(keys::read_secret(&dir.join(CA_KEY_FILE))?).map_err(|_| {
            IdentityError::BadFile { path: dir.join(CA_KEY_FILE), what: "CA key", reason: "not UTF-8 PEM".into() }
        })?;
        let ca = FederationCa { cert_pem: file.ca_cert.clone(), key_pem };
        let sharing = sharing::load(dir)?;
        Ok(Federation { dir: dir.to_path_buf(), file, ca, authority: Signer::new(authority), sharing })
    }

    /// The public trust anchors.
    pub fn file(&self) -> &FederationFile {
        &self.file
    }

    /// Signs records as the authority (cards, revocations).
    pub fn authority(&self) -> &Signer {
        &self.authority
    }

    /// The CA, for issuing certificates in tests and tools.
    pub fn ca(&self) -> &FederationCa {
        &self.ca
    }

    /// `cirfed federation admit`: checks a join request and issues the TLS
    /// certificate and the member card.
    pub fn admit(
        &self,
        request: &JoinRequest,
        roles: &[Role],
        valid_days: u32,
        now: i64,
    ) -> Result<Admission, IdentityError> {
        let signing_key = verify_join_request(request)?;
        let member_id = member_id(&signing_key);
        let issued = pki::issue_node_cert(&self.ca, &request.csr, &member_id, valid_days, CertUsage::ClientAndServer)?;
        let valid_from = now - now.rem_euclid(DAY_SECS);
        let valid_until = valid_from + i64::from(valid_days) * DAY_SECS;
        let (_, card) = self.sign_card(&member_id, &signing_key, roles, valid_from, valid_until);
        self.register(request, &member_id, &issued.serial_hex, valid_until)?;
        let (sharing_key, sharing_epochs) = self.sharing_fields();
        Ok(Admission {
            federation: self.file.clone(),
            member_id,
            certificate: issued.cert_pem,
            card: base64::engine::general_purpose::STANDARD.encode(card.encode_to_vec()),
            sharing_key,
            sharing_epochs,
        })
    }

    /// A member card for `key`, signed by the authority.
    pub fn sign_card(
        &self,
        member_id: &str,
        key: &VerifyingKey,
        roles: &[Role],
        valid_from: i64,
        valid_until: i64,
    ) -> (RecordId, Envelope) {
        let card = MemberCard {
            member_id: member_id.to_string(),
            signing_key: key.to_bytes().to_vec(),
            roles: roles.iter().map(|r| r.code()).collect(),
            valid_from,
            valid_until,
            ..MemberCard::default()
        };
        self.authority.seal(authority_record(valid_from, Body::MemberCard(card)))
    }

    /// The current signing key of an admitted member, from the operator's
    /// register (the latest admission or renewal).
    pub fn member_key(&self, member_id: &str) -> Result<VerifyingKey, IdentityError> {
        let path = self.dir.join(MEMBERS_FILE);
        let lines = self.register_lines()?;
        lines
            .iter()
            .rev()
            .find(|entry| entry["member_id"] == member_id)
            .and_then(|entry| entry["signing_key"].as_str().and_then(|k| hex::decode(k).ok()))
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
            .and_then(|bytes| VerifyingKey::from_bytes(&bytes).ok())
            .ok_or_else(|| IdentityError::BadRequest(format!("no admitted member {member_id} in {}", path.display())))
    }

    /// A revocation of `key` from `revoked_at` on, signed by the authority.
    pub fn sign_revocation(&self, key: &VerifyingKey, revoked_at: i64, reason: &str, now: i64) -> (RecordId, Envelope) {
        let revocation = MemberRevocation {
            signing_key: key.to_bytes().to_vec(),
            revoked_at,
            reason: reason.to_string(),
            ..MemberRevocation::default()
        };
        self.authority.seal(authority_record(now, Body::MemberRevocation(revocation)))
    }

    /// Appends to the operator's private register (member id -> organisation).
    fn register(
        &self,
        request: &JoinRequest,
        member_id: &str,
        serial: &str,
        valid_until: i64,
    ) -> Result<(), IdentityError> {
        let line = serde_json::json!({
            "member_id": member_id, "name": request.name, "hosts": request.hosts,
            "signing_key": request.signing_key, "certificate_serial": serial, "valid_until": valid_until,
        });
        operator::append_line(&self.dir.join(MEMBERS_FILE), &line)
    }
}

fn authority_record(created_at: i64, body: Body) -> Record {
    Record { version: record::RECORD_VERSION, author: Vec::new(), created_at, tlp: Tlp::Green.code(), body: Some(body) }
}

/// Checks the proof of possession and returns the requested signing key.
fn verify_join_request(request: &JoinRequest) -> Result<VerifyingKey, IdentityError> {
    let key_bytes: [u8; 32] = hex::decode(&request.signing_key)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| IdentityError::BadRequest("signing_key is not a 32-byte hex key".into()))?;
    let key = VerifyingKey::from_bytes(&key_bytes)
        .map_err(|_| IdentityError::BadRequest("signing_key is not an ed25519 key".into()))?;
    let proof = hex::decode(&request.proof)
        .ok()
        .and_then(|b| Signature::from_slice(&b).ok())
        .ok_or_else(|| IdentityError::BadRequest("proof is not a hex ed25519 signature".into()))?;
    key.verify(&join_proof_message(&request.csr), &proof).map_err(|_| {
        IdentityError::BadRequest("proof does not verify: the requester does not hold the signing key".into())
    })?;
    Ok(key)
}

fn join_proof_message(csr: &str) -> Vec<u8> {
    [JOIN_PROOF_DOMAIN, csr.as_bytes()].concat()
}

/// `cirfed node init`: keys, default config and a join request.
pub fn init_node(dir: &Path, name: &str, hosts: &[String], force: bool) -> Result<JoinRequest, IdentityError> {
    if dir.join(CONFIG_FILE).exists() && !force {
        return Err(IdentityError::NodeExists(dir.to_path_buf()));
    }
    let signing = keys::generate_signing_key();
    let (tls_key, csr) = pki::create_node_key_and_csr(name, hosts)?;
    keys::write_signing_key(&dir.join(SIGNING_KEY_FILE), &signing, force)?;
    keys::write_secret(&dir.join(TLS_KEY_FILE), tls_key.as_bytes(), force)?;
    keys::write_public(&dir.join(CONFIG_FILE), ConfigFile::default().to_toml().as_bytes(), force)?;
    let proof = ed25519_dalek::Signer::sign(&signing, &join_proof_message(&csr));
    let request = JoinRequest {
        name: name.to_string(),
        hosts: hosts.to_vec(),
        signing_key: hex::encode(signing.verifying_key().as_bytes()),
        csr,
        proof: hex::encode(proof.to_bytes()),
    };
    let json = serde_json::to_string_pretty(&request).expect("join request serializes");
    keys::write_public(&dir.join(JOIN_REQUEST_FILE), json.as_bytes(), force)?;
    Ok(request)
}

/// `cirfed node join`: checks that an admission belongs to this node and
/// installs it. A renewal (same member id, certificate for the key `node
/// renew` made) replaces the current admission without `--force`; a running
/// node takes it from its next handshake.
pub fn join_node(dir: &Path, admission: &Admission, force: bool) -> Result<(), IdentityError> {
    pki::verify_issued_by(&admission.certificate, &admission.federation.ca_cert)?;
    check_card(admission, &renewal::signing_key_for(dir, admission)?)?;
    let renewed = renewal::install_renewed_key(dir, admission)?;
    let tls_key = read_tls_key(dir)?;
    if !pki::cert_public_key_matches(&admission.certificate, &tls_key)? {
        return Err(IdentityError::BadAdmission("the certificate is not for this node's TLS key".into()));
    }
    let json = serde_json::to_string_pretty(admission).expect("admission serializes");
    let same_member = member_id_of_admission(dir)?.as_deref() == Some(admission.member_id.as_str());
    keys::write_secret(&dir.join(ADMISSION_FILE), json.as_bytes(), force || renewed || same_member)?;
    Ok(())
}

/// The member id of the installed admission, if there is one.
fn member_id_of_admission(dir: &Path) -> Result<Option<String>, IdentityError> {
    let path = dir.join(ADMISSION_FILE);
    if !path.exists() {
        return Ok(None);
    }
    Ok(Some(read_json::<Admission>(&path, "admission")?.member_id))
}

/// The card must be the authority's, for this node's signing key.
fn check_card(admission: &Admission, signing: &SigningKey) -> Result<(), IdentityError> {
    let envelope = admission.card_envelope()?;
    let authority = admission.federation.authority()?;
    let card_record =
        Record::decode(envelope.record.as_slice()).map_err(|e| IdentityError::BadAdmission(e.to_string()))?;
    if card_record.author != authority {
        return Err(IdentityError::BadAdmission("the member card is not signed by the federation authority".into()));
    }
    let key =
        VerifyingKey::from_bytes(&authority).map_err(|_| IdentityError::BadAdmission("bad authority key".into()))?;
    let signature = Signature::from_slice(&envelope.signature)
        .map_err(|_| IdentityError::BadAdmission("bad card signature".into()))?;
    key.verify_strict(&record::signing_message(&envelope.record), &signature)
        .map_err(|_| IdentityError::BadAdmission("the member card signature does not verify".into()))?;
    match card_record.body {
        Some(Body::MemberCard(card)) if card.signing_key == signing.verifying_key().as_bytes() => Ok(()),
        Some(Body::MemberCard(_)) => {
            Err(IdentityError::BadAdmission("the member card is for another node's key".into()))
        }
        _ => Err(IdentityError::BadAdmission("the card record is not a member card".into())),
    }
}

/// Everything a joined node loads at start.
pub struct NodeKeys {
    /// Signs what the node publishes.
    pub signing: SigningKey,
    /// PEM of the node's TLS key.
    pub tls_key: String,
    /// The installed admission.
    pub admission: Admission,
}

/// Loads a joined node's keys and admission.
pub fn load_node(dir: &Path) -> Result<NodeKeys, IdentityError> {
    let admission_path = dir.join(ADMISSION_FILE);
    if !admission_path.exists() {
        return Err(IdentityError::NotJoined(dir.to_path_buf()));
    }
    let admission: Admission = read_json(&admission_path, "admission")?;
    let signing = keys::read_signing_key(&dir.join(SIGNING_KEY_FILE))?;
    let tls_key = read_tls_key(dir)?;
    Ok(NodeKeys { signing, tls_key, admission })
}

/// Reads a join request file.
pub fn read_join_request(path: &Path) -> Result<JoinRequest, IdentityError> {
    read_json(path, "join request")
}

/// Reads an admission file.
pub fn read_admission(path: &Path) -> Result<Admission, IdentityError> {
    read_json(path, "admission")
}

/// Writes an admission file (public content; the operator sends it to the node).
pub fn write_admission(path: &Path, admission: &Admission, force: bool) -> Result<(), IdentityError> {
    let json = serde_json::to_string_pretty(admission).expect("admission serializes");
    Ok(keys::write_secret(path, json.as_bytes(), force)?)
}

/// The node's TLS key PEM, with the same permission checks as every secret.
fn read_tls_key(dir: &Path) -> Result<String, IdentityError> {
    let path = dir.join(TLS_KEY_FILE);
    let bytes = keys::read_secret(&path)?;
    String::from_utf8(bytes).map_err(|_| IdentityError::BadFile {
        path,
        what: "TLS key",
        reason: "not UTF-8 PEM".into(),
    })
}

fn read_text(path: &Path) -> Result<String, IdentityError> {
    std::fs::read_to_string(path).map_err(|e| io_error("read", path, e))
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path, what: &'static str) -> Result<T, IdentityError> {
    serde_json::from_str(&read_text(path)?).map_err(|e| IdentityError::BadFile {
        path: path.to_path_buf(),
        what,
        reason: e.to_string(),
    })
}

fn read_toml<T: for<'de> Deserialize<'de>>(path: &Path, what: &'static str) -> Result<T, IdentityError> {
    toml::from_str(&read_text(path)?).map_err(|e| IdentityError::BadFile {
        path: path.to_path_buf(),
        what,
        reason: e.message().to_string(),
    })
}

fn to_toml<T: Serialize>(value: &T) -> String {
    toml::to_string_pretty(value).expect("serializes")
}

fn io_error(action: &'static str, path: &Path, error: std::io::Error) -> IdentityError {
    IdentityError::Io { action, path: path.to_path_buf(), reason: error.to_string() }
}
