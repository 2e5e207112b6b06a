//! Runs a node from its directory: checks the config, loads the identity,
//! opens the store, builds the node and serves the local API and the peer service.

mod trust; // which CRL and certificate the peer TLS uses: verified CRLs, renewals

pub use trust::TrustKeeper;

use crate::accept::{AcceptError, AcceptPolicy};
use crate::api::NodeSlot;
use crate::config::{Config, ConfigError, ConfigFile};
use crate::federation::link::{LinkSettings, Links};
use crate::federation::{self, stopped, InboundPeers, PeerRates, PeerScores};
use crate::health::{HealthState, Readiness};
use crate::identity::{self, pki, IdentityError};
use crate::node::{Node, NodeError, NodeIdentity};
use crate::record::Signer;
use crate::store::{Store, StoreError};
use crate::transport::{self, TlsLimits};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// File in the node directory holding the local API address of the running
/// node, so that CLI commands given `--dir` find it (also with port 0).
pub const API_ADDR_FILE: &str = "api.addr";
/// File in the node directory holding the peer service address of the running node.
pub const FEDERATION_ADDR_FILE: &str = "federation.addr";
/// Written by `serve` when the HTTP listener is on: its address.
pub const HTTP_ADDR_FILE: &str = "http.addr";

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
    #[error(transparent)]
    Accept(#[from] AcceptError),
    #[error("cannot listen on {addr}: {reason}")]
    Bind { addr: SocketAddr, reason: String },
    #[error("cannot write {path}: {reason}")]
    Io { path: PathBuf, reason: String },
    #[error("listener failed: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("node start interrupted: {0}")]
    Interrupted(String),
}

/// Settings that override `node.toml` for one run (CLI flags, tests).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// Local API address instead of `api.listen`.
    pub api_listen: Option<SocketAddr>,
    /// Peer service address instead of `federation.listen`.
    pub federation_listen: Option<SocketAddr>,
    /// Peers to dial besides `federation.peers`.
    pub peers: Vec<String>,
    /// HTTP listener address instead of `taxii.listen` (turns it on).
    pub http_listen: Option<SocketAddr>,
}

impl Overrides {
    /// Both listeners on loopback with ports the OS picks: tests and the demo.
    pub fn loopback() -> Self {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        Overrides { api_listen: Some(any), federation_listen: Some(any), peers: Vec::new(), http_listen: None }
    }
}

type ServeTask = JoinHandle<Result<(), tonic::transport::Error>>;

/// A node serving its local API and its peer service.
pub struct RunningNode {
    /// Where the local API listens.
    pub api_addr: SocketAddr,
    /// Where the peer service listens.
    pub federation_addr: SocketAddr,
    /// Where the HTTP listener (TAXII, feeds) listens, when it is on.
    pub http_addr: Option<SocketAddr>,
    /// The node behind them.
    pub node: Arc<Node>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<ServeTask>,
    /// The peers this node dials.
    pub links: Arc<Links>,
    /// What both listeners' health services answer.
    pub health: HealthState,
    /// api.addr and federation.addr: removed when the node stops, so a
    /// client never finds the address of a node that is gone.
    addr_files: AddrFiles,
}

impl RunningNode {
    /// Stops serving, waits for in-flight requests to finish, and returns
    /// once the store is closed, so the directory can be opened again.
    pub async fn stop(self) -> Result<(), ServerError> {
        let RunningNode { node, shutdown, tasks, links, health, addr_files, .. } = self;
        addr_files.remove();
        wind_down(node, &health, &shutdown, links, tasks).await
    }

    /// Serves until a listener fails or `shutdown` completes.
    pub async fn run_until(self, shutdown: impl std::future::Future<Output = ()>) -> Result<(), ServerError> {
        let RunningNode { node, shutdown: stop, tasks, links, health, addr_files, .. } = self;
        let mut failed = futures::future::select_all(tasks);
        let result = tokio::select! {
            _ = shutdown => Ok(()),
            (result, _, _) = &mut failed => finished(result),
        };
        addr_files.remove();
        result.and(wind_down(node, &health, &stop, links, failed.into_inner()).await)
    }
}

/// How long a stopping node waits for work in flight (a batch being
/// verified, the stem clock's last tick) to let go of it.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Says NOT_SERVING, signals shutdown, waits for the links and the serving
/// tasks to end, then for the node to be released.
async fn wind_down(
    node: Arc<Node>,
    health: &HealthState,
    shutdown: &watch::Sender<bool>,
    links: Arc<Links>,
    tasks: Vec<ServeTask>,
) -> Result<(), ServerError> {
    // First, so health watchers (load balancers) hear of it before the listeners close.
    health.set(Readiness::Stopping);
    let _ = shutdown.send(true);
    links.join().await;
    drop(links);
    for task in tasks {
        finished(task.await)?;
    }
    release(node).await
}

/// Waits until `node` is the last reference, then drops it, closing the store.
async fn release(node: Arc<Node>) -> Result<(), ServerError> {
    let started = tokio::time::Instant::now();
    while Arc::strong_count(&node) > 1 {
        if started.elapsed() > STOP_TIMEOUT {
            return Err(ServerError::Interrupted(format!(
                "work in flight still holds the node after {STOP_TIMEOUT:?}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    drop(node);
    Ok(())
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
    if let Some(addr) = overrides.federation_listen {
        file.federation.listen = addr.to_string();
    }
    file.federation.peers.extend(overrides.peers.iter().cloned());
    if let Some(addr) = overrides.http_listen {
        file.taxii.listen = Some(addr.to_string());
    }
    Ok(file.validate()?)
}

/// Opens the node in `dir` (blocking: RocksDB and the index rebuild).
pub fn open_node(dir: &Path, config: &Config) -> Result<Node, ServerError> {
    let keys = identity::load_node(dir)?;
    let card = keys.admission.card_envelope()?;
    let store = Store::open(&dir.join(identity::DATA_DIR), config.sync_writes)?;
    let identity = node_identity(keys)?;
    let accept = AcceptPolicy::load(&config.accept, dir)?;
    Ok(Node::open(store, identity, config.publish.clone(), accept, card)?)
}

/// Who the node in a directory is: its member id, signing key and sharing keys.
pub(crate) fn node_identity(keys: identity::NodeKeys) -> Result<NodeIdentity, ServerError> {
    Ok(NodeIdentity {
        member_id: keys.admission.member_id.clone(),
        authority: keys.admission.federation.authority()?,
        sharing: keys.admission.sharing_keys()?,
        signer: Signer::new(keys.signing),
    })
}

/// Starts the node in `dir` and serves its local API and peer service.
pub async fn start(dir: &Path, overrides: Overrides) -> Result<RunningNode, ServerError> {
    bind_node(dir, overrides).await?.open().await
}

/// A node whose listeners are bound and whose store is not open yet. Its
/// local API already answers: health says NOT_SERVING, every other call
/// UNAVAILABLE, so a load balancer tells a starting node from a dead one.
pub struct StartingNode {
    /// Where the local API listens.
    pub api_addr: SocketAddr,
    dir: PathBuf,
    config: Config,
    health: HealthState,
    /// The local API's node service, filled once the node is open.
    api: NodeSlot,
    api_task: ServeTask,
    /// The peer listener: served only once the node is open, since its TLS
    /// needs the CRLs the store holds.
    peers: (TcpListener, SocketAddr),
    shutdown: watch::Sender<bool>,
}

/// Checks the config, binds both listeners and serves the local API's
/// health while the store is still closed; `open` finishes the start.
pub async fn bind_node(dir: &Path, overrides: Overrides) -> Result<StartingNode, ServerError> {
    let config = load_config(dir, &overrides)?;
    let (api, api_addr) = bind(config.api_listen).await?;
    let peers = bind(config.federation_listen).await?;
    let (shutdown, stop) = watch::channel(false);
    let health = HealthState::new();
    let slot = NodeSlot::default();
    let api_task = match config.api_tls {
        false => tokio::spawn(crate::api::serve(slot.clone(), health.clone(), api, stopped(stop))),
        true => {
            let tls = transport::fixed(api_tls_config(dir, &config)?);
            let incoming = transport::tls_incoming(api, tls, TlsLimits::default());
            tokio::spawn(crate::api::serve_incoming(slot.clone(), health.clone(), incoming, stopped(stop)))
        }
    };
    Ok(StartingNode { api_addr, dir: dir.to_path_buf(), config, health, api: slot, api_task, peers, shutdown })
}

impl StartingNode {
    /// Opens the store, serves everything and says SERVING. On failure the
    /// local API stops again before the error returns.
    pub async fn open(self) -> Result<RunningNode, ServerError> {
        let (dir, config) = (self.dir.clone(), self.config.clone());
        let opened = tokio::task::spawn_blocking(move || open_node(&dir, &config))
            .await
            .map_err(|e| ServerError::Interrupted(e.to_string()))
            .and_then(|node| node);
        match opened {
            Ok(node) => self.serve(Arc::new(node)).await,
            Err(error) => {
                let _ = self.shutdown.send(true);
                let _ = self.api_task.await;
                Err(error)
            }
        }
    }

    async fn serve(self, node: Arc<Node>) -> Result<RunningNode, ServerError> {
        let StartingNode { api_addr, dir, config, health, api, api_task, peers, shutdown } = self;
        let dir = dir.as_path();
        let stop = shutdown.subscribe();
        let (peers, federation_addr) = peers;
        let scores = Arc::new(PeerScores::default());
        let inbound = Arc::new(InboundPeers::default());
        let keeper = match TrustKeeper::new(dir, &config, node.clone()) {
            Ok(keeper) => keeper,
            Err(error) => {
                let _ = shutdown.send(true);
                let _ = api_task.await;
                return Err(error);
            }
        };
        let settings = LinkSettings {
            tls: keeper.client_tls(),
            anti_entropy: config.anti_entropy,
            inbound_rate: config.max_peer_records_per_second,
        };
        let links = Arc::new(Links::new(node.clone(), scores.clone(), inbound.clone(), settings, stop.clone()));
        for addr in &config.peers {
            links.add(addr);
        }
        api.fill(node.clone(), links.clone());
        let incoming = transport::tls_incoming(peers, keeper.server_tls(), TlsLimits::default());
        let rates = Arc::new(PeerRates::new(config.max_peer_records_per_second));
        let serving = federation::serve(node.clone(), health.clone(), scores, rates, inbound, incoming, stop.clone());
        let federation_task = tokio::spawn(serving);
        node.configure_stem(config.stem);
        tokio::spawn(stem_clock(node.clone(), stop.clone()));
        tokio::spawn(keeper.run(stop));
        let mut tasks = vec![api_task, federation_task];
        let http_addr = match start_http(dir, &config, node.clone(), stopped(shutdown.subscribe())).await {
            Ok(Some((addr, task))) => {
                tasks.push(task);
                Some(addr)
            }
            Ok(None) => None,
            Err(error) => {
                wind_down(node, &health, &shutdown, links, tasks).await?;
                return Err(error);
            }
        };
        // Written once everything answers: CLI commands given --dir find a ready node.
        let addr_files = match AddrFiles::write(dir, api_addr, federation_addr, http_addr) {
            Ok(files) => files,
            Err(error) => {
                wind_down(node, &health, &shutdown, links, tasks).await?;
                return Err(error);
            }
        };
        health.set(Readiness::Serving);
        Ok(RunningNode { api_addr, federation_addr, http_addr, node, shutdown, tasks, links, health, addr_files })
    }
}

/// Sends due stem hops and floods records past their embargo, until the node stops.
async fn stem_clock(node: Arc<Node>, stop: watch::Receiver<bool>) {
    let stopping = stopped(stop);
    tokio::pin!(stopping);
    let mut tick = tokio::time::interval(crate::node::stem::STEM_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            // Flooding an expired record writes to the store: off the async workers.
            _ = tick.tick() => {
                let node = node.clone();
                let _ = tokio::task::spawn_blocking(move || node.stem_tick()).await;
            }
            _ = &mut stopping => return,
        }
    }
}

/// The address files of a running node.
struct AddrFiles(Vec<PathBuf>);

impl AddrFiles {
    fn write(
        dir: &Path,
        api: SocketAddr,
        federation: SocketAddr,
        http: Option<SocketAddr>,
    ) -> Result<AddrFiles, ServerError> {
        let files = [(API_ADDR_FILE, Some(api)), (FEDERATION_ADDR_FILE, Some(federation)), (HTTP_ADDR_FILE, http)];
        let mut written = AddrFiles(Vec::new());
        for (file, addr) in files.into_iter().filter_map(|(file, addr)| Some((file, addr?))) {
            let path = dir.join(file);
            std::fs::write(&path, addr.to_string())
                .map_err(|e| ServerError::Io { path: path.clone(), reason: e.to_string() })?;
            written.0.push(path);
        }
        Ok(written)
    }

    /// No other node can have rewritten them: the store's lock keeps one
    /// node per directory.
    fn remove(&self) {
        for path in &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}

async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), ServerError> {
    let bind_error = |e: std::io::Error| ServerError::Bind { addr, reason: e.to_string() };
    let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
    let local = listener.local_addr().map_err(bind_error)?;
    Ok((listener, local))
}

/// Binds and serves the HTTP listener when `[taxii]` turns it on.
async fn start_http(
    dir: &Path,
    config: &Config,
    node: Arc<Node>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<Option<(SocketAddr, ServeTask)>, ServerError> {
    let Some(http) = &config.http else { return Ok(None) };
    let (listener, addr) = bind(http.listen).await?;
    let tls = match http.tls {
        false => None,
        true => Some(transport::fixed(http_tls_config(dir, http)?)),
    };
    let router = crate::http::router(Arc::new(crate::http::HttpState::new(node, http)));
    let task = tokio::spawn(async move {
        // The listener's failure is the listener's alone: logged, and the
        // node's other services go on.
        if let Err(error) = crate::http::serve(listener, tls, router, stop).await {
            tracing::error!(%addr, reason = %error, "http listener stopped");
        }
        Ok(())
    });
    Ok(Some((addr, task)))
}

/// HTTPS for the HTTP listener: the node's certificate, and client
/// certificates from `taxii.client_ca` when set.
fn http_tls_config(dir: &Path, http: &crate::http::HttpConfig) -> Result<rustls::ServerConfig, ServerError> {
    let keys = identity::load_node(dir)?;
    let client_ca = match &http.client_ca {
        Some(path) => {
            let path = if path.is_absolute() { path.clone() } else { dir.join(path) };
            Some(std::fs::read_to_string(&path).map_err(|e| ServerError::Io { path, reason: e.to_string() })?)
        }
        None => None,
    };
    let config = pki::http_server_config(&keys.admission.certificate, &keys.tls_key, client_ca.as_deref())
        .map_err(IdentityError::from)?;
    Ok(config)
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
