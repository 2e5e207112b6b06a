//! Sealing records: encode once, sign the exact bytes.

use super::{RecordId, SIGNING_DOMAIN};
use crate::proto::{Envelope, Record};
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use prost::Message;

/// The bytes an ed25519 record signature covers: the domain, then the record.
pub fn signing_message(record_bytes: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(SIGNING_DOMAIN.len() + record_bytes.len());
    message.extend_from_slice(SIGNING_DOMAIN);
    message.extend_from_slice(record_bytes);
    message
}

/// Signs records as one author (a member, or the federation authority).
pub struct Signer {
    key: SigningKey,
}

impl Signer {
    /// A signer over the given key.
    pub fn new(key: SigningKey) -> Self {
        Signer { key }
    }

    /// The author's public key, written into every record it seals.
    pub fn public_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// Sets `record.author` to this signer, encodes it once and signs the bytes.
    ///
    /// Ed25519 signatures are deterministic, so sealing the same record twice
    /// yields the same envelope and the same id.
    pub fn seal(&self, mut record: Record) -> (RecordId, Envelope) {
        record.author = self.public_key().to_bytes().to_vec();
        let bytes = record.encode_to_vec();
        let id = RecordId::of(&bytes);
        (id, self.sign_encoded(bytes))
    }

    /// Signs record bytes exactly as given (encoded with this signer as author).
    pub fn sign_encoded(&self, bytes: Vec<u8>) -> Envelope {
        let signature = self.key.sign(&signing_message(&bytes));
        Envelope { record: bytes, signature: signature.to_bytes().to_vec() }
    }
}
