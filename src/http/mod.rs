//! The node's HTTP listener, for the tools a SOC already runs: TAXII 2.1 for
//! SIEMs and TIPs (Sentinel, Splunk, Elastic, OpenCTI), the MISP feed for
//! MISP instances, and blocklists for firewalls, IDS and resolvers.
//!
//! Off by default (`taxii.listen`); plain HTTP only on loopback, as for the
//! local API; every request authenticated by token (see `auth`), optionally
//! over mutual TLS. Formats come from `crate::interop`; this module adds
//! routing, authentication, limits and streaming.

mod add;
pub mod auth;
mod blocklist;
pub mod config;
mod error;
mod misp_feed;
mod taxii;

pub use config::{HttpConfig, HttpConfigError, HttpLimits, TaxiiSection};
pub use error::HttpError;

use crate::node::Node;
use crate::transport::{self, ServerTls, TlsLimits};
use auth::Users;
use axum::extract::DefaultBodyLimit;
use axum::Router;
use rand::RngCore;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use tower_http::timeout::TimeoutLayer;

/// What every handler shares.
pub struct HttpState {
    /// The node behind the listener.
    pub node: Arc<Node>,
    /// Who may call, with their rights.
    pub users: Users,
    /// Request and page limits.
    pub limits: HttpLimits,
    /// Served over HTTPS (for the URLs discovery gives out).
    pub tls: bool,
    /// Authenticates TAXII `next` cursors; random per run, so a cursor does
    /// not outlive the node process (clients start again from `added_after`).
    pub cursor_key: [u8; 32],
    /// Status resources of recent POSTs.
    pub statuses: Mutex<taxii::StatusBook>,
}

impl HttpState {
    /// State over `node` with the listener's users and limits.
    pub fn new(node: Arc<Node>, config: &HttpConfig) -> Self {
        let mut cursor_key = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut cursor_key);
        HttpState {
            node,
            users: config.users.clone(),
            limits: config.limits,
            tls: config.tls,
            cursor_key,
            statuses: Mutex::new(taxii::StatusBook::default()),
        }
    }
}

/// Every route, with the limits applied.
pub fn router(state: Arc<HttpState>) -> Router {
    let limits = state.limits;
    Router::new()
        .merge(taxii::routes())
        .merge(misp_feed::routes())
        .merge(blocklist::routes())
        // Bodies are read whole (a POSTed envelope); larger ones answer 413.
        .layer(DefaultBodyLimit::max(limits.max_content_length))
        .layer(TimeoutLayer::with_status_code(axum::http::StatusCode::REQUEST_TIMEOUT, limits.request_timeout))
        .with_state(state)
}

/// Serves `router` on `listener` until `stop` completes; over TLS when `tls`
/// is given (the same handshake limits as the node's other TLS listeners).
pub async fn serve(
    listener: TcpListener,
    tls: Option<ServerTls>,
    router: Router,
    stop: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    match tls {
        None => axum::serve(listener, router).with_graceful_shutdown(stop).await,
        Some(tls) => {
            let incoming = TlsListener::new(listener, tls)?;
            axum::serve(incoming, router).with_graceful_shutdown(stop).await
        }
    }
}

/// TLS connections as an axum listener: the handshakes run in
/// `transport::tls_incoming`, under its limits.
struct TlsListener {
    incoming: tokio_stream::wrappers::ReceiverStream<
        Result<transport::IdleTimeout<tokio_rustls::server::TlsStream<tokio::net::TcpStream>>, std::io::Error>,
    >,
    local: SocketAddr,
}

impl TlsListener {
    fn new(listener: TcpListener, tls: ServerTls) -> std::io::Result<Self> {
        let local = listener.local_addr()?;
        Ok(TlsListener { incoming: transport::tls_incoming(listener, tls, TlsLimits::default()), local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = transport::IdleTimeout<tokio_rustls::server::TlsStream<tokio::net::TcpStream>>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        use tokio_stream::StreamExt;
        loop {
            match self.incoming.next().await {
                Some(Ok(stream)) => {
                    let peer = stream.get_ref().get_ref().0.peer_addr().unwrap_or(self.local);
                    return (stream, peer);
                }
                Some(Err(error)) => tracing::warn!(reason = %error, "https accept failed"),
                // The accept loop ended (it never does while the listener lives).
                None => std::future::pending::<()>().await,
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
