//! Connecting to a running node's local API.

use super::errors::ClientError;
use crate::ApiTarget;
use cirfed::api::MAX_API_MESSAGE_BYTES;
use cirfed::config::{ConfigFile, DEFAULT_API_LISTEN};
use cirfed::identity;
use cirfed::proto::node_client::NodeClient;
use cirfed::server::API_ADDR_FILE;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

/// How long to wait for the node to accept a connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a client command waits for the node to answer one request
/// (`--timeout`): short, so a paused node fails a script in seconds, not minutes.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The timeout of this process's connection, for the message when it expires.
/// `status_error` is a plain `map_err` function, so it reads it from here.
static REQUEST_TIMEOUT: OnceLock<Duration> = OnceLock::new();

/// Where the target names the node: --api, else the node directory's
/// api.addr, else the default.
enum Address {
    Given(String),
    FromFile { addr: String, dir: std::path::PathBuf },
}

impl Address {
    fn addr(&self) -> &str {
        match self {
            Address::Given(addr) | Address::FromFile { addr, .. } => addr,
        }
    }
}

fn address(target: &ApiTarget) -> Result<Address, ClientError> {
    if let Some(api) = &target.api {
        return Ok(Address::Given(api.clone()));
    }
    let Some(dir) = &target.node else {
        return Ok(Address::Given(DEFAULT_API_LISTEN.to_string()));
    };
    let path = dir.join(API_ADDR_FILE);
    match std::fs::read_to_string(&path) {
        Ok(addr) => Ok(Address::FromFile { addr: addr.trim().to_string(), dir: dir.clone() }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(ClientError::NodeNotRunning {
            dir: dir.clone(),
            reason: format!("no {API_ADDR_FILE}: `serve` writes it while the node runs"),
        }),
        Err(e) => Err(ClientError::NodeNotRunning {
            dir: dir.clone(),
            reason: format!("cannot read {}: {e}", path.display()),
        }),
    }
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

/// The target's request timeout (`--timeout`, in seconds).
fn request_timeout(target: &ApiTarget) -> Duration {
    Duration::from_secs(target.timeout)
}

/// A client of the node's local API.
pub async fn connect(target: &ApiTarget) -> anyhow::Result<NodeClient<Channel>> {
    let address = address(target)?;
    let addr = address.addr().to_string();
    let tls = match &target.node {
        Some(dir) => node_tls(dir)?,
        None => None,
    };
    let timeout = request_timeout(target);
    let _ = REQUEST_TIMEOUT.set(timeout);
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut endpoint = Endpoint::from_shared(format!("{scheme}://{addr}"))
        .map_err(|_| anyhow::anyhow!("'{addr}' is not a host:port address"))?
        .connect_timeout(CONNECT_TIMEOUT.min(timeout))
        .timeout(timeout);
    if let Some(tls) = tls {
        endpoint = endpoint.tls_config(tls)?;
    }
    // The TLS handshake is not covered by the connect timeout: a node that
    // accepts and then stalls would hang it.
    let channel = match tokio::time::timeout(timeout, endpoint.connect()).await {
        Err(_) => return Err(ClientError::Timeout { after: timeout }.into()),
        Ok(Ok(channel)) => channel,
        Ok(Err(error)) => return Err(unreachable(&address, error)),
    };
    Ok(NodeClient::new(channel)
        .max_decoding_message_size(MAX_API_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_API_MESSAGE_BYTES))
}

/// A failed connection: refused at an address from a node directory means a
/// stale api.addr, left by a node that did not stop cleanly.
fn unreachable(address: &Address, error: tonic::transport::Error) -> anyhow::Error {
    let refused = std::iter::successors(Some(&error as &(dyn std::error::Error + 'static)), |e| e.source())
        .filter_map(|e| e.downcast_ref::<std::io::Error>())
        .any(|e| e.kind() == std::io::ErrorKind::ConnectionRefused);
    match address {
        Address::FromFile { addr, dir } if refused => ClientError::NodeNotRunning {
            dir: dir.clone(),
            reason: format!("its {API_ADDR_FILE} names {addr}, where nothing listens: a stale file"),
        }
        .into(),
        _ => anyhow::Error::new(error).context(ClientError::Unreachable { addr: address.addr().to_string() }),
    }
}

/// Turns a gRPC status into an error that reads well on a terminal and keeps
/// its code for `--json`.
pub fn status_error(status: tonic::Status) -> anyhow::Error {
    // tonic reports its client-side timeout as CANCELLED "Timeout expired".
    let timed_out = status.code() == tonic::Code::Cancelled && status.message() == "Timeout expired";
    match (timed_out, REQUEST_TIMEOUT.get()) {
        (true, Some(after)) => ClientError::Timeout { after: *after }.into(),
        _ => ClientError::Api(status).into(),
    }
}
