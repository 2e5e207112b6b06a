//! MISP: events in (a file or a feed directory), the node's feed out as a
//! MISP feed.

pub mod event;
pub mod feed;
