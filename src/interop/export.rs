//! One entry point for every export format, so the local API's `Export`, the
//! HTTP listener and tests produce the same bytes from the same code.

use super::{blocklist, misp, stix, Feed, Filter, InteropError};
use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Write};
use std::str::FromStr;

/// An export format, as named on the CLI, in `ExportRequest.format` and in
/// the HTTP paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A STIX 2.1 bundle.
    Stix,
    /// A MISP feed directory: manifest.json, hashes.csv, one `<uuid>.json` per event.
    MispFeed,
    /// A blocklist for firewalls, IDS and resolvers.
    Blocklist(blocklist::Form),
}

impl FromStr for Format {
    type Err = InteropError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "stix" | "stix2" | "stix-2.1" => Ok(Format::Stix),
            "misp-feed" | "misp" => Ok(Format::MispFeed),
            other => match other.strip_prefix("blocklist/").or_else(|| other.strip_prefix("blocklist-")) {
                Some(form) => Ok(Format::Blocklist(form.parse()?)),
                None => Err(InteropError::invalid(
                    format!("export format {other:?}"),
                    format!("expected stix, misp-feed or blocklist/<form> ({})", blocklist::Form::NAMES.join(", ")),
                )),
            },
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Format::Stix => f.write_str("stix"),
            Format::MispFeed => f.write_str("misp-feed"),
            Format::Blocklist(form) => write!(f, "blocklist/{form}"),
        }
    }
}

/// Where an export writes. Formats of one stream write to it directly;
/// formats of several files call `start_file` before each file.
pub trait Sink: Write {
    /// Everything written from now on belongs to `name` (a relative path).
    fn start_file(&mut self, name: &str) -> io::Result<()>;
}

/// What an export wrote and what it left out, with the reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Objects written, by kind ("indicator", "report", "event", "value"...).
    pub exported: BTreeMap<String, u64>,
    /// Records left out, by reason ("keyed_hash", "tlp_red"...).
    pub skipped: BTreeMap<String, u64>,
}

impl Summary {
    /// Counts one object written.
    pub fn wrote(&mut self, kind: &str) {
        *self.exported.entry(kind.to_string()).or_default() += 1;
    }

    /// Counts one record left out.
    pub fn skip(&mut self, reason: &str) {
        *self.skipped.entry(reason.to_string()).or_default() += 1;
    }

    /// Objects written in all.
    pub fn total(&self) -> u64 {
        self.exported.values().sum()
    }
}

/// Writes the feed as `format` into `sink`.
pub fn export(
    feed: &dyn Feed,
    format: Format,
    filter: &Filter,
    now: i64,
    sink: &mut dyn Sink,
) -> Result<Summary, InteropError> {
    match format {
        Format::Stix => stix::export_bundle(feed, filter, sink),
        Format::MispFeed => misp::feed::export(feed, filter, now, sink),
        Format::Blocklist(form) => blocklist::export(feed, form, filter, now, sink),
    }
}
