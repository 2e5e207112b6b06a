//! STIX 2.1: records out as a bundle or as TAXII objects, bundles in as
//! drafts. (Issue 9: being written; see the signatures the TAXII server and
//! the export use.)

pub mod ids;

use super::export::Summary;
use super::{Feed, FeedRecord, Filter, InteropError};
use std::io::Write;

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
/// (a reason code such as "keyed_hash" or "tlp_red").
pub fn objects_of(feed: &dyn Feed, record: &FeedRecord) -> Result<Result<Vec<StixObject>, &'static str>, InteropError> {
    let _ = (feed, record);
    unimplemented!("issue 9: STIX export in progress")
}

/// The objects every bundle and collection starts with: the TLP 2.0 marking
/// definitions and cirfed's extension-definition with its identity.
pub fn preamble() -> Vec<StixObject> {
    unimplemented!("issue 9: STIX export in progress")
}

/// Writes the feed as one STIX 2.1 bundle.
pub fn export_bundle(feed: &dyn Feed, filter: &Filter, out: &mut dyn Write) -> Result<Summary, InteropError> {
    let _ = (feed, filter, out);
    unimplemented!("issue 9: STIX export in progress")
}
