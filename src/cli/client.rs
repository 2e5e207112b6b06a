//! Connecting to a running node's local API.

use crate::ApiTarget;
use anyhow::Context;
use cirfed::api::MAX_API_MESSAGE_BYTES;
use cirfed::config::{ConfigFile, DEFAULT_API_LISTEN};
use cirfed::identity;
use cirfed::proto::node_client::NodeClient;
use cirfed::server::API_ADDR_FILE;
use std::path::Path;
use std::time::Duration;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

/// How long to wait for the node to accept a connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// The address the target names: --api, else the node directory's api.addr,
/// else the default.
pub fn address(target: &ApiTarget) -> anyhow::Result<String> {
    if let Some(api) = &target.api {
        return Ok(api.clone());
    }
    if let Some(dir) = &target.node {
        let path = dir.join(API_ADDR_FILE);
        let addr = std::fs::read_to_string(&path).with_context(|| {
            format!("cannot read {}: is `cirfed serve --dir {}` running?", path.display(), dir.display())
        })?;
        return Ok(addr.trim().to_string());
    }
    Ok(DEFAULT_API_LISTEN.to_string())
}

/// Client TLS for a node whose local API is served over mutual TLS: the CLI,
/// run beside the node, presents the node's own certificate.
fn node_tls(dir: &Path) -> anyhow::Result<Option<ClientTlsConfig>> {
    let config = ConfigFile::load(dir)?;
    if !config.api.tls {
        return Ok(None);
    }
    let keys = identity::load_node(dir)?;
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&keys.admission.federation.ca_cert))
        .identity(Identity::from_pem(&keys.admission.certificate, &keys.tls_key));
    Ok(Some(tls))
}

/// A client of the node's local API.
pub async fn connect(target: &ApiTarget) -> anyhow::Result<NodeClient<Channel>> {
    let addr = address(target)?;
    let tls = match &target.node {
        Some(dir) => node_tls(dir)?,
        None => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut endpoint = Endpoint::from_shared(format!("{scheme}://{addr}"))
        .with_context(|| format!("'{addr}' is not a host:port address"))?
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT);
    if let Some(tls) = tls {
        endpoint = endpoint.tls_config(tls)?;
    }
    let channel = endpoint
        .connect()
        .await
        .with_context(|| format!("cannot reach the node's local API at {addr}: is `cirfed serve` running?"))?;
    Ok(NodeClient::new(channel)
        .max_decoding_message_size(MAX_API_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_API_MESSAGE_BYTES))
}

/// Turns a gRPC status into an error that reads well on a terminal.
pub fn status_error(status: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{} ({:?})", status.message(), status.code())
}
