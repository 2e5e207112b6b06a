//! Runs a node from its directory: checks the config, loads the identity,
//! opens the store, builds the node and serves the local API.

use crate::config::{Config, ConfigError, ConfigFile};
use crate::identity::{self, pki, IdentityError};
use crate::node::{Node, NodeError, NodeIdentity};
use crate::record::Signer;
use crate::store::{Store, StoreError};
use crate::transport::{self, TlsLimits};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// File in the node directory holding the local API address of the running
/// node, so that CLI commands given `--dir` find it (also with port 0).
pub const API_ADDR_FILE: &str = "api.addr";

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Node(#[from] NodeError),
    #[error("cannot listen on {addr}: {reason}")]
    Bind { addr: SocketAddr, reason: String },
    #[error("cannot write {path}: {reason}")]
    Io { path: PathBuf, reason: String },
    #[error("local API failed: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("node start interrupted: {0}")]
    Interrupted(String),
}

/// Settings that override `node.toml` for one run (CLI flags, tests).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// Local API address instead of `api.listen`.
    pub api_listen: Option<SocketAddr>,
}

/// A node serving its local API.
pub struct RunningNode {
    /// Where the local API listens.
    pub api_addr: SocketAddr,
    /// The node behind it.
    pub node: Arc<Node>,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
}

impl RunningNode {
    /// Stops serving and waits for in-flight requests to finish.
    pub async fn stop(self) -> Result<(), ServerError> {
        let _ = self.shutdown.send(());
        self.task.await.map_err(|e| ServerError::Interrupted(e.to_string()))??;
        Ok(())
    }

    /// Serves until the local API fails or `shutdown` completes.
    pub async fn run_until(self, shutdown: impl std::future::Future<Output = ()>) -> Result<(), ServerError> {
        let RunningNode { shutdown: stop, mut task, .. } = self;
        tokio::select! {
            _ = shutdown => {
                let _ = stop.send(());
            }
            result = &mut task => return finished(result),
        }
        finished(task.await)
    }
}

fn finished(result: Result<Result<(), tonic::transport::Error>, tokio::task::JoinError>) -> Result<(), ServerError> {
    result.map_err(|e| ServerError::Interrupted(e.to_string()))??;
    Ok(())
}

/// Loads and checks the node directory's config.
pub fn load_config(dir: &Path, overrides: &Overrides) -> Result<Config, ServerError> {
    let mut file = ConfigFile::load(dir)?;
    if let Some(addr) = overrides.api_listen {
        file.api.listen = addr.to_string();
    }
    Ok(file.validate()?)
}

/// Opens the node in `dir` (blocking: RocksDB and the index rebuild).
pub fn open_node(dir: &Path, config: &Config) -> Result<Node, ServerError> {
    let keys = identity::load_node(dir)?;
    let card = keys.admission.card_envelope()?;
    let authority = keys.admission.federation.authority()?;
    let store = Store::open(&dir.join(identity::DATA_DIR), config.sync_writes)?;
    let identity =
        NodeIdentity { member_id: keys.admission.member_id.clone(), signer: Signer::new(keys.signing), authority };
    Ok(Node::open(store, identity, config.publish.clone(), card)?)
}

/// Starts the node in `dir` and serves its local API.
pub async fn start(dir: &Path, overrides: Overrides) -> Result<RunningNode, ServerError> {
    let config = load_config(dir, &overrides)?;
    let owned = dir.to_path_buf();
    let open_config = config.clone();
    let node = tokio::task::spawn_blocking(move || open_node(&owned, &open_config))
        .await
        .map_err(|e| ServerError::Interrupted(e.to_string()))??;
    let node = Arc::new(node);
    let listener = TcpListener::bind(config.api_listen)
        .await
        .map_err(|e| ServerError::Bind { addr: config.api_listen, reason: e.to_string() })?;
    let api_addr =
        listener.local_addr().map_err(|e| ServerError::Bind { addr: config.api_listen, reason: e.to_string() })?;
    let addr_path = dir.join(API_ADDR_FILE);
    std::fs::write(&addr_path, api_addr.to_string())
        .map_err(|e| ServerError::Io { path: addr_path, reason: e.to_string() })?;
    let (shutdown, stopped) = oneshot::channel::<()>();
    let stopped = async {
        let _ = stopped.await;
    };
    let task = match config.api_tls {
        false => tokio::spawn(crate::api::serve(node.clone(), listener, stopped)),
        true => {
            let tls = Arc::new(api_tls_config(dir, &config)?);
            let incoming = transport::tls_incoming(listener, tls, TlsLimits::default());
            tokio::spawn(crate::api::serve_incoming(node.clone(), incoming, stopped))
        }
    };
    Ok(RunningNode { api_addr, node, shutdown, task })
}

/// Mutual TLS for the local API: the node's certificate, and client
/// certificates from `api.client_ca` (default: the federation CA).
fn api_tls_config(dir: &Path, config: &Config) -> Result<rustls::ServerConfig, ServerError> {
    let keys = identity::load_node(dir)?;
    let client_ca = match &config.api_client_ca {
        Some(path) => {
            let path = if path.is_absolute() { path.clone() } else { dir.join(path) };
            std::fs::read_to_string(&path).map_err(|e| ServerError::Io { path, reason: e.to_string() })?
        }
        None => keys.admission.federation.ca_cert.clone(),
    };
    let config =
        pki::server_config(&client_ca, &keys.admission.certificate, &keys.tls_key, &[]).map_err(IdentityError::from)?;
    Ok(config)
}
