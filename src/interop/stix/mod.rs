//! STIX 2.1: records out as a bundle or as TAXII objects, bundles (2.1 and
//! 2.0) and TAXII posts in as drafts.
//!
//! - `pattern`: STIX patterns read into observables and written from them.
//! - `objects`: the typed STIX objects records become.
//! - `export`: records to objects with what the feed adds (versions, authors), and the streamed bundle.
//! - `import`: bundles and posted objects to drafts.
//! - `markings`: TLP marking definitions, cirfed's extension-definition and fixed identities.
//! - `ids`: deterministic object ids that lead back to their records.

pub mod export;
pub mod ids;
pub mod import;
mod lexer;
pub mod markings;
pub mod objects;
pub mod pattern;
pub mod time;

#[cfg(test)]
mod tests;

use super::export::Summary;
use super::{Feed, FeedRecord, Filter, InteropError};
use markings::{AUTHORITY_IDENTITY, AUTHORITY_NAME, CIRFED_IDENTITY, EXPORTABLE_TLPS, FIXED_CREATED};
use std::io::Write;

pub use import::{import_objects, ImportAction, ObjectImport};

/// One STIX object, serialised, with what TAXII lists about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StixObject {
    /// `<type>--<uuid>`.
    pub id: String,
    /// The STIX type ("indicator", "report", ...).
    pub kind: &'static str,
    /// Its version: `modified`, or `created` for objects without one.
    pub version: String,
    /// The object as compact JSON.
    pub json: String,
}

/// The objects one stored record contributes, or why it contributes none
/// (a reason code such as "keyed_hash" or "tlp_red", see `export::reason`).
pub fn objects_of(feed: &dyn Feed, record: &FeedRecord) -> Result<Result<Vec<StixObject>, &'static str>, InteropError> {
    let mut found = Vec::new();
    let outcome = export::Builder::new(feed).visit(record, &mut |object| {
        found.push(StixObject {
            id: object.id().to_string(),
            kind: export::kind_of(&object),
            version: object.modified().to_string(),
            json: serde_json::to_string(&object).map_err(|e| InteropError::Io(e.into()))?,
        });
        Ok(())
    })?;
    Ok(outcome.map(|()| found))
}

/// cirfed's own objects: its extension-definition, the identity that
/// defines it, and the federation authority's identity.
fn fixed_objects() -> Vec<StixObject> {
    let identity = |id: objects::ObjectId, name, description, class| {
        let object = objects::fixed_identity(id, FIXED_CREATED, name, description, class);
        StixObject {
            id: id.to_string(),
            kind: "identity",
            version: FIXED_CREATED.to_string(),
            json: serde_json::to_string(&object).expect("identities serialise"),
        }
    };
    vec![
        StixObject {
            id: markings::EXTENSION_ID.to_owned(),
            kind: "extension-definition",
            version: FIXED_CREATED.to_string(),
            json: markings::extension_definition(),
        },
        identity(CIRFED_IDENTITY, "cirfed", "The cirfed federation software, author of the cirfed STIX extension.", "system"),
        identity(
            AUTHORITY_IDENTITY,
            AUTHORITY_NAME,
            "The authority of a cirfed federation: it admits members and signs their cards.",
            "organization",
        ),
    ]
}

/// The objects every bundle and collection starts with: the TLP 2.0 marking
/// definitions and cirfed's extension-definition with its identity.
pub fn preamble() -> Vec<StixObject> {
    let mut objects: Vec<StixObject> = EXPORTABLE_TLPS
        .iter()
        .map(|tlp| {
            let (id, created, json) = markings::marking_definition(*tlp);
            StixObject { id: id.to_owned(), kind: "marking-definition", version: created.to_owned(), json }
        })
        .collect();
    objects.extend(fixed_objects());
    objects
}

/// Writes the feed as one STIX 2.1 bundle, streamed; the bundle id (last) is a hash of its objects.
pub fn export_bundle(feed: &dyn Feed, filter: &Filter, out: &mut dyn Write) -> Result<Summary, InteropError> {
    export::bundle(feed, filter, out)
}
