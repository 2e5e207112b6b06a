//! MISP: events in (a file or a feed directory), the node's feed out as a
//! MISP feed. (Issue 9: being written.)

pub mod feed;
