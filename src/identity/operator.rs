//! The operator's side of the trust lifecycle: revoking members, issuing the
//! CRL every node installs, and the register those rely on.
//!
//! Registers are JSON lines in the federation directory, appended to and never
//! rewritten: `members.jsonl` (one line per admission or renewal, with its
//! certificate serial) and `revoked.jsonl` (one line per revocation, with every
//! serial the member was ever issued).

use super::{io_error, keys, pki, Federation, IdentityError};
use crate::proto::{record::Body, Envelope, MemberRevocation};
use crate::record::RecordId;
use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The operator's register of revocations.
pub const REVOKED_FILE: &str = "revoked.jsonl";
/// The operator's settings.
pub const OPERATOR_FILE: &str = "operator.toml";
/// Default days from a CRL's issue to its next update (`crl_valid_days`).
pub const DEFAULT_CRL_VALID_DAYS: u32 = 7;
const DAY_SECS: i64 = 86_400;

/// `FED/operator.toml`: the operator's settings, with named defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OperatorConfig {
    /// Days from a CRL's issue to its next update: nodes warn once it passes,
    /// so re-issue (`cirfed federation crl`) well within it. Default 7.
    pub crl_valid_days: u32,
}

impl Default for OperatorConfig {
    fn default() -> Self {
        OperatorConfig { crl_valid_days: DEFAULT_CRL_VALID_DAYS }
    }
}

impl OperatorConfig {
    /// Reads `FED/operator.toml`; defaults when absent (federations made before it existed).
    pub fn load(dir: &Path) -> Result<OperatorConfig, IdentityError> {
        let path = dir.join(OPERATOR_FILE);
        if !path.exists() {
            return Ok(OperatorConfig::default());
        }
        let config: OperatorConfig = super::read_toml(&path, "operator config")?;
        if config.crl_valid_days == 0 {
            return Err(IdentityError::BadFile {
                path,
                what: "operator config",
                reason: "crl_valid_days must be at least 1".into(),
            });
        }
        Ok(config)
    }
}

/// One line of `revoked.jsonl`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RevokedMember {
    member_id: String,
    /// Every certificate serial the member was issued (hex).
    serials: Vec<String>,
    revoked_at: i64,
    reason: String,
}

/// What `federation revoke` produced.
#[derive(Debug, Clone)]
pub struct Revoked {
    /// The revocation record's id.
    pub id: RecordId,
    /// The signed revocation, carrying the new CRL.
    pub envelope: Envelope,
    /// The new CRL, as written to `FED/crl.pem`.
    pub crl_pem: String,
    /// Certificates the CRL revokes, this member's and earlier ones.
    pub crl_serials: usize,
}

impl Federation {
    /// `cirfed federation revoke`: records the revocation, issues a CRL naming
    /// every certificate revoked so far, and signs a revocation record that
    /// carries it, so every node cuts the member off and installs the CRL.
    pub fn revoke_member(
        &self,
        member_id: &str,
        revoked_at: i64,
        reason: &str,
        now: i64,
    ) -> Result<Revoked, IdentityError> {
        let key = self.member_key(member_id)?;
        let serials = self.member_serials(member_id)?;
        let entry = RevokedMember { member_id: member_id.to_string(), serials, revoked_at, reason: reason.to_string() };
        append_line(&self.dir.join(REVOKED_FILE), &serde_json::to_value(&entry).expect("serializes"))?;
        let crl_pem = self.issue_crl(now, None)?;
        let crl = super::crl::authenticate(crl_pem.as_bytes(), &self.file.ca_cert).map_err(|e| {
            IdentityError::BadFile { path: self.dir.join(super::CRL_FILE), what: "crl", reason: e.to_string() }
        })?;
        let (id, envelope) = self.sign_member_revocation(&key, member_id, revoked_at, reason, crl.der.clone(), now);
        Ok(Revoked { id, envelope, crl_pem, crl_serials: crl.revoked })
    }

    /// A revocation record for `key` (member `member_id`) carrying `crl`.
    pub fn sign_member_revocation(
        &self,
        key: &VerifyingKey,
        member_id: &str,
        revoked_at: i64,
        reason: &str,
        crl: Vec<u8>,
        now: i64,
    ) -> (RecordId, Envelope) {
        let revocation = MemberRevocation {
            signing_key: key.to_bytes().to_vec(),
            revoked_at,
            reason: reason.to_string(),
            member_id: member_id.to_string(),
            crl,
        };
        self.authority.seal(super::authority_record(now, Body::MemberRevocation(revocation)))
    }

    /// `cirfed federation crl`: a CRL naming every certificate revoked so far,
    /// valid for `valid_days` (default: `crl_valid_days` of `operator.toml`),
    /// numbered above the last one, written to `FED/crl.pem` and returned.
    pub fn issue_crl(&self, now: i64, valid_days: Option<u32>) -> Result<String, IdentityError> {
        let days = match valid_days {
            Some(days) => days,
            None => OperatorConfig::load(&self.dir)?.crl_valid_days,
        };
        let serials: Vec<String> = self.revoked_members()?.into_iter().flat_map(|m| m.serials).collect();
        let path = self.dir.join(super::CRL_FILE);
        let last = std::fs::read(&path)
            .ok()
            .and_then(|pem| super::crl::authenticate(&pem, &self.file.ca_cert).ok())
            .map_or(0, |crl| crl.number);
        // The time as number keeps numbers rising across operator machines; +1 within a second.
        let number = (now.max(0) as u64).max(last + 1);
        let pem = pki::create_crl(&self.ca, &serials, now, now + i64::from(days.max(1)) * DAY_SECS, number)?;
        keys::write_public(&path, pem.as_bytes(), true)?;
        Ok(pem)
    }

    /// True when `member_id` has been revoked.
    pub fn is_revoked(&self, member_id: &str) -> Result<bool, IdentityError> {
        Ok(self.revoked_members()?.iter().any(|m| m.member_id == member_id))
    }

    /// Every certificate serial issued to `member_id`, from the register.
    fn member_serials(&self, member_id: &str) -> Result<Vec<String>, IdentityError> {
        let serials = self
            .register_lines()?
            .into_iter()
            .filter(|entry| entry["member_id"] == member_id)
            .filter_map(|entry| entry["certificate_serial"].as_str().map(str::to_string))
            .collect();
        Ok(serials)
    }

    /// The lines of `members.jsonl`.
    pub(super) fn register_lines(&self) -> Result<Vec<serde_json::Value>, IdentityError> {
        read_lines(&self.dir.join(super::MEMBERS_FILE))
    }

    fn revoked_members(&self) -> Result<Vec<RevokedMember>, IdentityError> {
        let path = self.dir.join(REVOKED_FILE);
        read_lines(&path)?
            .into_iter()
            .map(|line| {
                serde_json::from_value(line).map_err(|e| IdentityError::BadFile {
                    path: path.clone(),
                    what: "revocation register",
                    reason: e.to_string(),
                })
            })
            .collect()
    }
}

/// JSON lines of a register; none when it does not exist yet.
pub(super) fn read_lines(path: &Path) -> Result<Vec<serde_json::Value>, IdentityError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error("read", path, e)),
    };
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            serde_json::from_str(line).map_err(|e| IdentityError::BadFile {
                path: path.to_path_buf(),
                what: "register",
                reason: e.to_string(),
            })
        })
        .collect()
}

/// Appends one line to a register (mode 0600: it maps pseudonyms to organisations).
pub(super) fn append_line(path: &Path, line: &serde_json::Value) -> Result<(), IdentityError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| io_error("open", path, e))?;
    writeln!(file, "{line}").map_err(|e| io_error("write", path, e))
}
