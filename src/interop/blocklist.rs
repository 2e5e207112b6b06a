//! Blocklists for firewalls, IDS and resolvers. (Issue 9: being written.)

use super::export::Summary;
use super::{Feed, Filter, InteropError};
use std::fmt;
use std::io::Write;
use std::str::FromStr;

/// A blocklist form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// One value a line.
    Plain,
}

impl Form {
    /// Every form's name.
    pub const NAMES: &'static [&'static str] = &["plain"];
}

impl FromStr for Form {
    type Err = InteropError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "plain" => Ok(Form::Plain),
            other => Err(InteropError::invalid(format!("blocklist form {other:?}"), Form::NAMES.join(", "))),
        }
    }
}

impl fmt::Display for Form {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("plain")
    }
}

/// Writes a blocklist of the live feed.
pub fn export(
    feed: &dyn Feed,
    form: Form,
    filter: &Filter,
    now: i64,
    out: &mut dyn Write,
) -> Result<Summary, InteropError> {
    let _ = (feed, form, filter, now, out);
    unimplemented!("issue 9: blocklists in progress")
}
