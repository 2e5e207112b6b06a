//! The members this node knows: what the authority's cards and revocations
//! say about each signing key, and which member ids are cut off. Records are
//! validated against it; the peer service refuses revoked members by it.

use crate::cir::Role;
use crate::proto::{MemberCard, MemberRevocation};
use crate::record::{Membership, Trust};
use std::collections::HashMap;

/// Member cards and revocations seen so far, by signing key.
#[derive(Debug, Clone)]
pub struct Roster {
    authority: [u8; 32],
    members: HashMap<[u8; 32], Membership>,
    /// Member ids the authority revoked, with the earliest revocation time:
    /// their peer sessions are refused whatever their certificates say.
    revoked_members: HashMap<String, i64>,
    /// Keys a later card replaced (signing-key rotation), from when.
    replaced: HashMap<[u8; 32], i64>,
}

impl Roster {
    /// An empty roster under the given federation authority.
    pub fn new(authority: [u8; 32]) -> Self {
        Roster { authority, members: HashMap::new(), revoked_members: HashMap::new(), replaced: HashMap::new() }
    }

    /// Records what a (validated) card says. When a key has several cards,
    /// the one that lasts longest wins: a renewal extends membership. A card
    /// that replaces an earlier key ends that key's validity from its time.
    pub fn add_card(&mut self, card: &MemberCard) {
        let Ok(key) = <[u8; 32]>::try_from(card.signing_key.as_slice()) else {
            return;
        };
        if let Ok(old) = <[u8; 32]>::try_from(card.replaces_key.as_slice()) {
            let from = self.replaced.get(&old).map_or(card.replaces_from, |at| (*at).min(card.replaces_from));
            self.replaced.insert(old, from);
        }
        let roles = card.roles.iter().filter_map(|r| Role::from_code(*r)).collect();
        let revoked_at = self.members.get(&key).and_then(|m| m.revoked_at);
        let candidate = Membership {
            member_id: card.member_id.clone(),
            roles,
            valid_from: card.valid_from,
            valid_until: card.valid_until,
            revoked_at,
            replaced_from: None,
        };
        if let Some(at) = revoked_at {
            self.revoke_member_id(&card.member_id, at);
        }
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
            replaced_from: None,
        });
        let at = member.revoked_at.map_or(revocation.revoked_at, |at| at.min(revocation.revoked_at));
        member.revoked_at = Some(at);
        // A card names the member; a revocation from before member ids were
        // carried names it only through the card.
        let known = (member.valid_until > 0).then(|| member.member_id.clone());
        for member_id in [Some(revocation.member_id.clone()).filter(|id| !id.is_empty()), known].into_iter().flatten() {
            self.revoke_member_id(&member_id, at);
        }
    }

    fn revoke_member_id(&mut self, member_id: &str, at: i64) {
        let entry = self.revoked_members.entry(member_id.to_string()).or_insert(at);
        *entry = (*entry).min(at);
    }

    /// When the member `member_id` was revoked, if it was.
    pub fn member_revoked(&self, member_id: &str) -> Option<i64> {
        self.revoked_members.get(member_id).copied()
    }

    /// Every revoked key with its revocation time.
    pub fn revocations(&self) -> Vec<([u8; 32], i64)> {
        self.members.iter().filter_map(|(key, m)| m.revoked_at.map(|at| (*key, at))).collect()
    }

    /// When `key` was revoked, if it was.
    pub fn revoked_at(&self, key: &[u8; 32]) -> Option<i64> {
        self.members.get(key).and_then(|m| m.revoked_at)
    }

    /// The current signing key of the member with this id: of its known
    /// cards, the one no later card replaced, latest first.
    pub fn key_of(&self, member_id: &str) -> Option<[u8; 32]> {
        self.members
            .iter()
            .filter(|(_, m)| m.member_id == member_id && m.valid_until > 0)
            .max_by_key(|(key, m)| (!self.replaced.contains_key(*key), m.valid_from, m.valid_until))
            .map(|(key, _)| *key)
    }

    /// Every key the member with this id has signed with (old and current).
    pub fn keys_of(&self, member_id: &str) -> Vec<[u8; 32]> {
        self.members.iter().filter(|(_, m)| m.member_id == member_id && m.valid_until > 0).map(|(k, _)| *k).collect()
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
        let mut membership = self.members.get(key).filter(|m| m.valid_until > 0).cloned()?;
        membership.replaced_from = self.replaced.get(key).copied();
        Some(membership)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    fn card(member_id: &str, key: u8, from: i64, until: i64) -> MemberCard {
        MemberCard {
            member_id: member_id.into(),
            signing_key: vec![key; 32],
            roles: vec![Role::Publish.code()],
            valid_from: from,
            valid_until: until,
            ..MemberCard::default()
        }
    }

    #[test]
    fn a_revocation_cuts_off_the_member_id_it_names_even_before_its_card() {
        let mut roster = Roster::new([9; 32]);
        roster.revoke(&MemberRevocation {
            signing_key: vec![1; 32],
            revoked_at: 100,
            member_id: "m-a".into(),
            ..MemberRevocation::default()
        });
        assert_eq!(roster.member_revoked("m-a"), Some(100));
        assert_eq!(roster.member_revoked("m-b"), None);
    }

    #[test]
    fn an_older_revocation_without_a_member_id_cuts_off_the_member_its_card_names() {
        let mut roster = Roster::new([9; 32]);
        roster.revoke(&MemberRevocation { signing_key: vec![1; 32], revoked_at: 50, ..MemberRevocation::default() });
        assert_eq!(roster.member_revoked("m-a"), None, "no card yet: the id is unknown");
        roster.add_card(&card("m-a", 1, 0, DAY));
        assert_eq!(roster.member_revoked("m-a"), Some(50));
    }

    #[test]
    fn a_replacing_card_ends_the_old_key_from_its_time_and_becomes_current() {
        let mut roster = Roster::new([9; 32]);
        roster.add_card(&card("m-a", 1, 0, 10 * DAY));
        let mut rotated = card("m-a", 2, DAY, 11 * DAY);
        (rotated.replaces_key, rotated.replaces_from) = (vec![1; 32], 2 * DAY);
        roster.add_card(&rotated);
        assert_eq!(roster.key_of("m-a"), Some([2; 32]));
        assert_eq!(roster.membership(&[1; 32]).unwrap().replaced_from, Some(2 * DAY));
        assert_eq!(roster.membership(&[2; 32]).unwrap().replaced_from, None);
    }
}
