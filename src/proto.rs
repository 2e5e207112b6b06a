//! Generated wire types of `proto/cirfed/v1` (records, local API).
//!
//! Record bodies are used as they are by the domain: a record *is* its protobuf
//! bytes. Enums are converted to domain enums in `record::convert`.

#![allow(missing_docs, clippy::all, clippy::pedantic)]

include!(concat!(env!("OUT_DIR"), "/cirfed.v1.rs"));

/// The encoded file descriptor set of `proto/cirfed/v1`, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("cirfed_descriptor");
