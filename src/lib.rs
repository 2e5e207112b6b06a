//! cirfed: a federation node for cloud incident sharing.
//!
//! Dependencies point one way: `server` -> `api` -> `node` -> `lookup`/`store`
//! -> `record`/`normalize`/`cir`. The domain modules know nothing of tonic,
//! RocksDB or tokio.

pub mod accept; // accept policy and warninglists: what this node's lookups report
pub mod anonymize; // scrub policy, detectors and keyed hashes: what leaves a node is anonymised
pub mod api; // local gRPC API for SOC tools
pub mod cir; // CIR vocabulary: levels and their mappings, TLP, phases, categories
pub mod config; // node.toml: named defaults, validation
pub mod decay; // confidence with sightings and time decay (MISP polynomial model)
pub mod federation; // peer service: mutual-TLS gRPC between member nodes
pub mod health; // grpc.health.v1 on both listeners: NOT_SERVING until ready and from stopping on
pub mod http; // HTTP listener: TAXII 2.1, the MISP feed and blocklists, for the SOC's own tools
pub mod identity;
pub mod interop; // STIX 2.1, TAXII 2.1, MISP, blocklists, CSV/JSON lines: the feed in the ecosystem's formats // keys, federation CA and authority, join requests, admissions, TLS configs
pub mod lookup; // in-memory match engine: exact, CIDR, parent domain, URL host
pub mod node; // node core: the one ingest pipeline, reads, roster of members
pub mod normalize; // observable parsing and canonical forms
pub mod proto; // generated wire types of proto/cirfed/v1
pub mod record; // records: canonical bytes, ids, signing, validation
pub mod server; // runs a node from its directory: store, node, listeners
pub mod status; // the one place errors become gRPC status codes
pub mod store; // RocksDB column families, key encoding, durable inserts
pub mod transport; // mutual-TLS listener with handshake limits, shared by TLS services
