//! The members this node knows: what the authority's cards and revocations
//! say about each signing key. Records are validated against it.

use crate::cir::Role;
use crate::proto::{MemberCard, MemberRevocation};
use crate::record::{Membership, Trust};
use std::collections::HashMap;

/// Member cards and revocations seen so far, by signing key.
#[derive(Debug, Clone)]
pub struct Roster {
    authority: [u8; 32],
    members: HashMap<[u8; 32], Membership>,
}

impl Roster {
    /// An empty roster under the given federation authority.
    pub fn new(authority: [u8; 32]) -> Self {
        Roster { authority, members: HashMap::new() }
    }

    /// Records what a (validated) card says. When a key has several cards,
    /// the one that lasts longest wins: a renewal extends membership.
    pub fn add_card(&mut self, card: &MemberCard) {
        let Ok(key) = <[u8; 32]>::try_from(card.signing_key.as_slice()) else {
            return;
        };
        let roles = card.roles.iter().filter_map(|r| Role::from_code(*r)).collect();
        let revoked_at = self.members.get(&key).and_then(|m| m.revoked_at);
        let candidate = Membership {
            member_id: card.member_id.clone(),
            roles,
            valid_from: card.valid_from,
            valid_until: card.valid_until,
            revoked_at,
        };
        match self.members.get(&key) {
            Some(current) if current.valid_until >= candidate.valid_until => {}
            _ => {
                self.members.insert(key, candidate);
            }
        }
    }

    /// Records a (validated) revocation. The earliest revocation time wins,
    /// and a revocation may arrive before the card it revokes.
    pub fn revoke(&mut self, revocation: &MemberRevocation) {
        let Ok(key) = <[u8; 32]>::try_from(revocation.signing_key.as_slice()) else {
            return;
        };
        let member = self.members.entry(key).or_insert_with(|| Membership {
            member_id: hex::encode(&key[..8]),
            roles: Vec::new(),
            valid_from: 0,
            valid_until: 0,
            revoked_at: None,
        });
        member.revoked_at = Some(member.revoked_at.map_or(revocation.revoked_at, |at| at.min(revocation.revoked_at)));
    }

    /// Every revoked key with its revocation time.
    pub fn revocations(&self) -> Vec<([u8; 32], i64)> {
        self.members.iter().filter_map(|(key, m)| m.revoked_at.map(|at| (*key, at))).collect()
    }

    /// When `key` was revoked, if it was.
    pub fn revoked_at(&self, key: &[u8; 32]) -> Option<i64> {
        self.members.get(key).and_then(|m| m.revoked_at)
    }

    /// The signing key of the member with this id, if its card is known.
    pub fn key_of(&self, member_id: &str) -> Option<[u8; 32]> {
        self.members.iter().find(|(_, m)| m.member_id == member_id && m.valid_until > 0).map(|(key, _)| *key)
    }

    /// Number of keys with a card.
    pub fn len(&self) -> usize {
        self.members.values().filter(|m| m.valid_until > 0).count()
    }

    /// True when no card is known.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Trust for Roster {
    fn authority(&self) -> [u8; 32] {
        self.authority
    }

    fn membership(&self, key: &[u8; 32]) -> Option<Membership> {
        // A revocation seen before its card leaves an entry with no validity.
        self.members.get(key).filter(|m| m.valid_until > 0).cloned()
    }
}
