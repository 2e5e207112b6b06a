//! Records to STIX objects with what the feed knows about them: a
//! superseding indicator is a later version of its chain's first object, a
//! retraction is the revoked version of its target, an author is the
//! identity of its pseudonym; and the bundle, streamed.

use super::ids::record_uuid;
use super::markings::{self, member_identity, AUTHORITY_IDENTITY};
use super::objects::{self, Common, Object, ObjectId};
use super::pattern;
use super::time::Timestamp;
use crate::cir::Tlp;
use crate::interop::export::Summary;
use crate::interop::{Feed, FeedRecord, Filter, InteropError};
use crate::normalize::ObservableType;
use crate::proto::record::Body;
use crate::proto::{Indicator, Retraction};
use crate::record::{RecordId, RecordKind};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::io::Write;

/// Earlier versions walked to find a superseding indicator's first version;
/// a longer chain is cut there (its oldest version read stands as the first).
pub const MAX_SUPERSEDES_DEPTH: usize = 64;
/// Records read from the feed at a time: memory stays at one chunk whatever the feed's size.
pub const EXPORT_READ_CHUNK: usize = 1_000;
/// Bytes gathered before they are hashed and written.
const WRITE_BUFFER_BYTES: usize = 256 << 10;

/// Reason codes of records left out (the summary's `skipped` keys).
pub mod reason {
    /// TLP:RED never leaves the node.
    pub const TLP_RED: &str = "tlp_red";
    /// A keyed hash is not the observable: no pattern can say it.
    pub const KEYED_HASH: &str = super::pattern::KEYED_HASH;
    /// Above the export's TLP ceiling.
    pub const TLP_ABOVE_CEILING: &str = "tlp_above_ceiling";
    /// The authority's revocation of a member key: no STIX object says it.
    pub const MEMBER_REVOCATION: &str = "member_revocation";
    /// A retraction whose target this node does not hold.
    pub const RETRACTION_TARGET_MISSING: &str = "retraction_target_missing";
    /// A retraction that is not the one in force for its target (not by its author or the authority).
    pub const RETRACTION_NOT_IN_FORCE: &str = "retraction_not_in_force";
    /// A retraction of a record that has no STIX object (a retraction, a member card).
    pub const UNSUPPORTED_RETRACTION: &str = "unsupported_retraction";
    /// An indicator value its type cannot write as a pattern.
    pub const INVALID_VALUE: &str = "invalid_value";
    /// A record without a body or with an unknown type.
    pub const MALFORMED: &str = "malformed";
    /// A version already written with the same id and `modified` (a member card re-issued in the same millisecond).
    pub const DUPLICATE_VERSION: &str = "duplicate_version";
    /// Left out by the export's kinds.
    pub const FILTERED_KIND: &str = "filtered_kind";
    /// Left out by the export's observable types.
    pub const FILTERED_TYPE: &str = "filtered_type";
    /// Below the export's lowest CIR level.
    pub const FILTERED_LEVEL: &str = "filtered_level";
    /// In none of the export's categories.
    pub const FILTERED_CATEGORY: &str = "filtered_category";
    /// Created before the export's `since`.
    pub const FILTERED_SINCE: &str = "filtered_since";
}

/// How a record's objects are made, with what the feed adds; caches the authors' identity ids.
pub struct Builder<'f> {
    feed: &'f dyn Feed,
    authors: HashMap<String, ObjectId>,
}

/// An indicator's place among the versions of its object.
struct Version {
    /// The chain's first record: its id names the object.
    root: RecordId,
    /// The first version's `created_at`.
    created: Timestamp,
    /// This version's `modified`: its `created_at`, or just after the version before.
    modified: Timestamp,
}

/// A retraction being written as its target's revoked version.
#[derive(Clone, Copy)]
struct Revocation<'a> {
    at: Timestamp,
    reason: &'a str,
}

type Emit<'e> = dyn FnMut(Object<'_>) -> Result<(), InteropError> + 'e;

impl<'f> Builder<'f> {
    /// A builder reading `feed`.
    pub fn new(feed: &'f dyn Feed) -> Self {
        Builder { feed, authors: HashMap::new() }
    }

    /// The identity `record`'s objects name as their creator.
    fn author(&mut self, record: &FeedRecord) -> ObjectId {
        let Some(member) = &record.author_member else { return AUTHORITY_IDENTITY };
        if let Some(id) = self.authors.get(member) {
            return *id;
        }
        let id = member_identity(member);
        self.authors.insert(member.clone(), id);
        id
    }

    /// Calls `emit` with each object `record` gives, or says why it gives none.
    pub fn visit(&mut self, record: &FeedRecord, emit: &mut Emit<'_>) -> Result<Result<(), &'static str>, InteropError> {
        if record.tlp() == Tlp::Red {
            return Ok(Err(reason::TLP_RED));
        }
        match &record.record.body {
            Some(Body::Retraction(retraction)) => self.retraction(record, retraction, emit),
            Some(Body::MemberRevocation(_)) => Ok(Err(reason::MEMBER_REVOCATION)),
            Some(_) => self.subject(record, None, emit),
            None => Ok(Err(reason::MALFORMED)),
        }
    }

    /// The objects of an indicator, lesson, sighting or member card, revoked when `revocation` is given.
    fn subject(
        &mut self,
        record: &FeedRecord,
        revocation: Option<Revocation<'_>>,
        emit: &mut Emit<'_>,
    ) -> Result<Result<(), &'static str>, InteropError> {
        let tlp = record.tlp();
        if tlp == Tlp::Red {
            return Ok(Err(reason::TLP_RED));
        }
        let created_at = Timestamp::from_secs(record.record.created_at);
        let mut common = Common {
            id: object_id_of(record),
            created: created_at,
            modified: created_at,
            created_by_ref: self.author(record),
            revoked: revocation.is_some(),
            tlp,
            record: &record.id,
            retraction_reason: revocation.map_or("", |r| r.reason),
        };
        let revise = |common: &mut Common<'_>| {
            if let Some(revocation) = revocation {
                common.modified = revocation.at.max(common.modified.next());
            }
        };
        let object = match &record.record.body {
            Some(Body::Indicator(indicator)) => {
                let Some(kind) = u8::try_from(indicator.r#type).ok().and_then(ObservableType::from_code) else {
                    return Ok(Err(reason::MALFORMED));
                };
                let pattern = match pattern::emit(kind, &indicator.value) {
                    Ok(pattern) => pattern,
                    Err(reason) => return Ok(Err(reason)),
                };
                let version = self.version(record, indicator)?;
                common.id = ObjectId::new("indicator", record_uuid(&version.root));
                (common.created, common.modified) = (version.created, version.modified);
                revise(&mut common);
                Object::Indicator(objects::indicator(common, indicator, kind, pattern, record.record.created_at))
            }
            Some(Body::Lesson(lesson)) => {
                let mut refs = Vec::with_capacity(lesson.indicator_refs.len());
                for id in &lesson.indicator_refs {
                    let Some(id) = RecordId::from_slice(id) else { continue };
                    refs.push(self.indicator_object(&id)?);
                }
                revise(&mut common);
                Object::Report(objects::report(common, lesson, created_at, refs))
            }
            Some(Body::Sighting(sighting)) => {
                let Some(indicator) = RecordId::from_slice(&sighting.indicator_id) else {
                    return Ok(Err(reason::MALFORMED));
                };
                let indicator = self.indicator_object(&indicator)?;
                revise(&mut common);
                Object::Sighting(objects::sighting(common, sighting, indicator))
            }
            Some(Body::MemberCard(card)) => {
                if revocation.is_some() {
                    return Ok(Err(reason::UNSUPPORTED_RETRACTION));
                }
                common.id = member_identity(&card.member_id);
                Object::Identity(objects::member(common, card))
            }
            Some(Body::Retraction(_)) if revocation.is_some() => return Ok(Err(reason::UNSUPPORTED_RETRACTION)),
            Some(Body::Retraction(_) | Body::MemberRevocation(_)) | None => return Ok(Err(reason::MALFORMED)),
        };
        emit(object)?;
        Ok(Ok(()))
    }

    /// A retraction in force, as its target's revoked version.
    fn retraction(
        &mut self,
        record: &FeedRecord,
        retraction: &Retraction,
        emit: &mut Emit<'_>,
    ) -> Result<Result<(), &'static str>, InteropError> {
        let target = match self.target(record, retraction)? {
            Ok(target) => target,
            Err(reason) => return Ok(Err(reason)),
        };
        let revocation = Revocation { at: Timestamp::from_secs(record.record.created_at), reason: &retraction.reason };
        self.subject(&target, Some(revocation), emit)
    }

    /// The record a retraction withdraws, when it is the retraction in force.
    fn target(&self, record: &FeedRecord, retraction: &Retraction) -> Result<Result<FeedRecord, &'static str>, InteropError> {
        let Some(target_id) = RecordId::from_slice(&retraction.target_id) else {
            return Ok(Err(reason::MALFORMED));
        };
        let Some(target) = self.feed.record(&target_id)? else {
            return Ok(Err(reason::RETRACTION_TARGET_MISSING));
        };
        if target.retraction.as_ref().is_none_or(|r| r.id != record.id) {
            return Ok(Err(reason::RETRACTION_NOT_IN_FORCE));
        }
        Ok(Ok(target))
    }

    /// Walks `supersedes` back to the chain's first version.
    fn version(&self, record: &FeedRecord, indicator: &Indicator) -> Result<Version, InteropError> {
        let mut times = vec![record.record.created_at];
        let mut root = record.id;
        let mut earlier = RecordId::from_slice(&indicator.supersedes);
        while let Some(id) = earlier {
            if times.len() > MAX_SUPERSEDES_DEPTH {
                break;
            }
            let Some(found) = self.feed.record(&id)? else { break };
            let Some(Body::Indicator(older)) = &found.record.body else { break };
            times.push(found.record.created_at);
            root = found.id;
            earlier = RecordId::from_slice(&older.supersedes);
        }
        let mut from_first = times.iter().rev().map(|t| Timestamp::from_secs(*t));
        let created = from_first.next().expect("the record itself");
        let modified = from_first.fold(created, |before, at| at.max(before.next()));
        Ok(Version { root, created, modified })
    }

    /// The object id of the indicator record `id` (its chain's first version), or of the id itself when unknown.
    fn indicator_object(&self, id: &RecordId) -> Result<ObjectId, InteropError> {
        let root = match self.feed.record(id)? {
            Some(record) => match &record.record.body {
                Some(Body::Indicator(indicator)) if !indicator.supersedes.is_empty() => {
                    self.version(&record, indicator)?.root
                }
                _ => *id,
            },
            None => *id,
        };
        Ok(ObjectId::new("indicator", record_uuid(&root)))
    }
}

/// The id a record's object has before versions are resolved.
fn object_id_of(record: &FeedRecord) -> ObjectId {
    let kind = match record.kind() {
        Some(RecordKind::Lesson) => "report",
        Some(RecordKind::Sighting) => "sighting",
        Some(RecordKind::MemberCard) => "identity",
        _ => "indicator",
    };
    ObjectId::new(kind, record_uuid(&record.id))
}

/// The STIX type of an object.
pub fn kind_of(object: &Object<'_>) -> &'static str {
    match object {
        Object::Indicator(_) => "indicator",
        Object::Report(_) => "report",
        Object::Sighting(_) => "sighting",
        Object::Identity(_) => "identity",
    }
}

/// Why `filter` leaves `record` out; `subject` is the record its objects
/// describe (a retraction's target, else the record itself).
fn left_out(filter: &Filter, record: &FeedRecord, subject: &FeedRecord) -> Option<&'static str> {
    if record.tlp() == Tlp::Red || subject.tlp() == Tlp::Red {
        return Some(reason::TLP_RED);
    }
    let ceiling = filter.tlp_ceiling();
    if record.tlp() > ceiling || subject.tlp() > ceiling {
        return Some(reason::TLP_ABOVE_CEILING);
    }
    if !filter.kinds.is_empty() {
        let kept = |kind: Option<RecordKind>| kind.is_some_and(|k| filter.kinds.contains(&k));
        if !kept(record.kind()) && !(record.kind() == Some(RecordKind::Retraction) && kept(subject.kind())) {
            return Some(reason::FILTERED_KIND);
        }
    }
    if filter.since != 0 && record.record.created_at < filter.since {
        return Some(reason::FILTERED_SINCE);
    }
    let in_categories = |codes: &[i32]| {
        filter.categories == 0 || codes.iter().any(|c| u32::try_from(*c).is_ok_and(|c| c < 32 && filter.categories & (1 << c) != 0))
    };
    match &subject.record.body {
        Some(Body::Indicator(indicator)) => {
            let kind = u8::try_from(indicator.r#type).ok().and_then(ObservableType::from_code);
            if !filter.types.is_empty() && !kind.is_some_and(|k| filter.types.contains(&k)) {
                return Some(reason::FILTERED_TYPE);
            }
            if indicator.cir_level < u32::from(filter.min_level) {
                return Some(reason::FILTERED_LEVEL);
            }
            if !in_categories(&indicator.categories) {
                return Some(reason::FILTERED_CATEGORY);
            }
        }
        Some(Body::Lesson(lesson)) => {
            if lesson.cir_level < u32::from(filter.min_level) {
                return Some(reason::FILTERED_LEVEL);
            }
            if !in_categories(&lesson.categories) {
                return Some(reason::FILTERED_CATEGORY);
            }
        }
        _ => {}
    }
    None
}

/// Bytes on their way out: hashed (the bundle id is the hash of its
/// objects) and written in large pieces.
struct Out<'w> {
    out: &'w mut dyn Write,
    buf: Vec<u8>,
    hasher: Sha256,
    /// Whether an object has been written (the next needs a comma).
    any: bool,
}

impl Out<'_> {
    fn object(&mut self, json: impl FnOnce(&mut Vec<u8>) -> Result<(), InteropError>) -> Result<(), InteropError> {
        if self.any {
            self.buf.push(b',');
        }
        self.any = true;
        json(&mut self.buf)?;
        if self.buf.len() >= WRITE_BUFFER_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), InteropError> {
        self.hasher.update(&self.buf);
        self.out.write_all(&self.buf)?;
        self.buf.clear();
        Ok(())
    }
}

fn serialize(buf: &mut Vec<u8>, object: &Object<'_>) -> Result<(), InteropError> {
    serde_json::to_writer(buf, object).map_err(|e| InteropError::Io(e.into()))
}

/// Writes the feed as one bundle, streaming: `{"type":"bundle","objects":[...],"id":"bundle--..."}`.
pub fn bundle(feed: &dyn Feed, filter: &Filter, out: &mut dyn Write) -> Result<Summary, InteropError> {
    if filter.min_score != 0 {
        return Err(InteropError::Unsupported(
            "a STIX export holds records, which have no score: --min-score applies to blocklists".to_owned(),
        ));
    }
    out.write_all(br#"{"type":"bundle","objects":["#)?;
    let mut out = Out { out, buf: Vec::with_capacity(WRITE_BUFFER_BYTES + (64 << 10)), hasher: Sha256::new(), any: false };
    let mut summary = Summary::default();
    for fixed in super::fixed_objects() {
        out.object(|buf| {
            buf.extend_from_slice(fixed.json.as_bytes());
            Ok(())
        })?;
        summary.wrote(fixed.kind);
    }
    let mut builder = Builder::new(feed);
    let mut markings_used: Vec<Tlp> = Vec::new();
    let mut identities: HashSet<(ObjectId, Timestamp)> = HashSet::new();
    let mut after = 0;
    loop {
        let records = feed.records_after(after, EXPORT_READ_CHUNK)?;
        let Some(last) = records.last() else { break };
        after = last.seq;
        for record in &records {
            let target = match &record.record.body {
                Some(Body::Retraction(retraction)) if record.tlp() != Tlp::Red => match builder.target(record, retraction)? {
                    Ok(target) => Some(target),
                    Err(reason) => {
                        summary.skip(reason);
                        continue;
                    }
                },
                _ => None,
            };
            let subject = target.as_ref().unwrap_or(record);
            if let Some(reason) = left_out(filter, record, subject) {
                summary.skip(reason);
                continue;
            }
            let outcome = builder.visit(record, &mut |object| {
                if matches!(object, Object::Identity(_)) && !identities.insert((object.id(), object.modified())) {
                    summary.skip(reason::DUPLICATE_VERSION);
                    return Ok(());
                }
                out.object(|buf| serialize(buf, &object))?;
                summary.wrote(kind_of(&object));
                Ok(())
            })?;
            match outcome {
                Ok(()) => {
                    if !markings_used.contains(&subject.tlp()) {
                        markings_used.push(subject.tlp());
                    }
                }
                Err(reason) => summary.skip(reason),
            }
        }
    }
    markings_used.sort();
    for tlp in markings_used {
        let (_, _, json) = markings::marking_definition(tlp);
        out.object(|buf| {
            buf.extend_from_slice(json.as_bytes());
            Ok(())
        })?;
        summary.wrote("marking-definition");
    }
    out.flush()?;
    let digest = std::mem::take(&mut out.hasher).finalize();
    let id = ObjectId::new("bundle", uuid::Builder::from_random_bytes(digest[..16].try_into().expect("32 bytes")).into_uuid());
    write!(out.out, r#"],"id":"{id}"}}"#)?;
    out.out.flush()?;
    Ok(summary)
}

