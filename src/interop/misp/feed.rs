//! A MISP feed directory: manifest.json, hashes.csv and one event per file.

use crate::interop::export::{Sink, Summary};
use crate::interop::{Feed, Filter, InteropError};

/// Writes the feed as a MISP feed (every file, through `sink.start_file`).
pub fn export(feed: &dyn Feed, filter: &Filter, now: i64, sink: &mut dyn Sink) -> Result<Summary, InteropError> {
    let _ = (feed, filter, now, sink);
    unimplemented!("issue 9: MISP feed export in progress")
}
