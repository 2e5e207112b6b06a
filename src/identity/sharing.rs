//! The federation's sharing keys, in epochs. Members share sensitive values
//! as keyed hashes under the current epoch's key and match under every epoch
//! they hold, so a rotation loses no match. `cirfed federation
//! rotate-sharing-key` starts a new epoch; admissions and renewals issued
//! after it carry every epoch's key, and a revoked member, which gets neither,
//! never learns a later one.

use super::{keys, operator, Admission, Federation, IdentityError, SHARING_KEY_FILE};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Epochs after the first, one JSON line each (the first is `sharing.key`).
pub const SHARING_EPOCHS_FILE: &str = "sharing-epochs.jsonl";
/// The epoch of `sharing.key`, and of keyed hashes that name none.
pub const FIRST_EPOCH: u32 = 1;

/// One epoch's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharingKey {
    pub epoch: u32,
    pub key: [u8; 32],
}

/// Every epoch's key a node or operator holds, oldest first; never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharingKeys(Vec<SharingKey>);

impl SharingKeys {
    /// Keys sorted by epoch; the last is current. Fails when empty or when two share an epoch.
    pub fn new(mut keys: Vec<SharingKey>) -> Result<SharingKeys, IdentityError> {
        keys.sort_by_key(|k| k.epoch);
        if keys.is_empty() || keys.windows(2).any(|w| w[0].epoch == w[1].epoch) || keys[0].epoch == 0 {
            return Err(IdentityError::BadAdmission("sharing keys need distinct epochs from 1".into()));
        }
        Ok(SharingKeys(keys))
    }

    /// The epoch new keyed hashes are made under.
    pub fn current(&self) -> SharingKey {
        *self.0.last().expect("never empty")
    }

    /// Every epoch's key, oldest first.
    pub fn all(&self) -> &[SharingKey] {
        &self.0
    }
}

/// An epoch as written in the operator's file and in admissions.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EpochEntry {
    pub epoch: u32,
    /// Hex of the 32-byte key.
    pub key: String,
    /// Unix seconds the operator started it (0 in admissions).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub started_at: i64,
}

fn is_zero(value: &i64) -> bool {
    *value == 0
}

impl EpochEntry {
    fn of(key: &SharingKey, started_at: i64) -> EpochEntry {
        EpochEntry { epoch: key.epoch, key: hex::encode(key.key), started_at }
    }

    fn key(&self) -> Result<SharingKey, IdentityError> {
        let key = hex::decode(&self.key).ok().and_then(|k| k.try_into().ok()).ok_or_else(|| {
            IdentityError::BadAdmission(format!("sharing key of epoch {} is not 32 bytes of hex", self.epoch))
        })?;
        Ok(SharingKey { epoch: self.epoch, key })
    }
}

/// The operator's keys: `sharing.key` (epoch 1) and every later epoch.
pub(super) fn load(dir: &Path) -> Result<SharingKeys, IdentityError> {
    let path = dir.join(SHARING_KEY_FILE);
    let first = hex::decode(keys::read_secret(&path)?).ok().and_then(|k| k.try_into().ok()).ok_or_else(|| {
        IdentityError::BadFile { path: path.clone(), what: "sharing key", reason: "not 32 bytes of hex".into() }
    })?;
    let mut all = vec![SharingKey { epoch: FIRST_EPOCH, key: first }];
    for line in operator::read_lines(&dir.join(SHARING_EPOCHS_FILE))? {
        let entry: EpochEntry = serde_json::from_value(line).map_err(|e| IdentityError::BadFile {
            path: dir.join(SHARING_EPOCHS_FILE),
            what: "sharing epochs",
            reason: e.to_string(),
        })?;
        all.push(entry.key()?);
    }
    SharingKeys::new(all)
}

impl Federation {
    /// `cirfed federation rotate-sharing-key`: a new epoch with a fresh key,
    /// current from now for every admission and renewal.
    pub fn rotate_sharing_key(&mut self, now: i64) -> Result<SharingKey, IdentityError> {
        let next = SharingKey { epoch: self.sharing.current().epoch + 1, key: rand::random() };
        let line = serde_json::to_value(EpochEntry::of(&next, now)).expect("epoch serializes");
        operator::append_line(&self.dir.join(SHARING_EPOCHS_FILE), &line)?;
        let mut all = self.sharing.all().to_vec();
        all.push(next);
        self.sharing = SharingKeys::new(all)?;
        Ok(next)
    }

    /// Every epoch's key.
    pub fn sharing_keys(&self) -> &SharingKeys {
        &self.sharing
    }

    /// What an admission carries: the current key (read by older nodes) and every epoch.
    pub(super) fn sharing_fields(&self) -> (String, Vec<EpochEntry>) {
        let epochs = self.sharing.all().iter().map(|k| EpochEntry::of(k, 0)).collect();
        (hex::encode(self.sharing.current().key), epochs)
    }
}

impl Admission {
    /// The keys for keyed hashes: every epoch the admission carries; for an
    /// admission from before epochs, its one key as epoch 1; for one from
    /// before the secret key, the key derived from the authority key.
    pub fn sharing_keys(&self) -> Result<SharingKeys, IdentityError> {
        if !self.sharing_epochs.is_empty() {
            return SharingKeys::new(self.sharing_epochs.iter().map(EpochEntry::key).collect::<Result<_, _>>()?);
        }
        let key = if self.sharing_key.is_empty() {
            crate::anonymize::federation_hash_key(&self.federation.authority()?)
        } else {
            EpochEntry { epoch: FIRST_EPOCH, key: self.sharing_key.clone(), started_at: 0 }.key()?.key
        };
        SharingKeys::new(vec![SharingKey { epoch: FIRST_EPOCH, key }])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_current_key_is_the_latest_epoch_and_epochs_must_be_distinct() {
        let keys = SharingKeys::new(vec![SharingKey { epoch: 2, key: [2; 32] }, SharingKey { epoch: 1, key: [1; 32] }])
            .unwrap();
        assert_eq!(keys.current().epoch, 2);
        assert_eq!(keys.all()[0].key, [1; 32]);
        let twice = vec![SharingKey { epoch: 1, key: [1; 32] }, SharingKey { epoch: 1, key: [2; 32] }];
        assert!(SharingKeys::new(twice).is_err());
        assert!(SharingKeys::new(Vec::new()).is_err());
    }
}
