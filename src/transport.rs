//! The mutual-TLS listener behind every TLS service of a node: a timeout per
//! handshake, a cap on handshakes in progress, and failed handshakes logged
//! and dropped without hurting the server.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio_rustls::{server::TlsStream, TlsAcceptor};
use tokio_stream::wrappers::ReceiverStream;

/// How long a client may take to complete the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in progress at once; further connections wait in the kernel backlog.
pub const MAX_CONCURRENT_HANDSHAKES: usize = 64;

/// Limits of a TLS listener.
#[derive(Debug, Clone, Copy)]
pub struct TlsLimits {
    /// Time allowed for one handshake.
    pub handshake_timeout: Duration,
    /// Handshakes in progress at once.
    pub max_handshakes: usize,
}

impl Default for TlsLimits {
    fn default() -> Self {
        TlsLimits { handshake_timeout: HANDSHAKE_TIMEOUT, max_handshakes: MAX_CONCURRENT_HANDSHAKES }
    }
}

/// Accepts TCP connections, completes TLS handshakes under the limits and
/// yields the established streams, for `serve_with_incoming`. The accept loop
/// stops when the returned stream is dropped.
pub fn tls_incoming(
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
    limits: TlsLimits,
) -> ReceiverStream<Result<TlsStream<TcpStream>, std::io::Error>> {
    let (established, receiver) = mpsc::channel(limits.max_handshakes);
    let acceptor = TlsAcceptor::from(config);
    let handshakes = Arc::new(Semaphore::new(limits.max_handshakes));
    tokio::spawn(async move {
        loop {
            let permit = tokio::select! {
                permit = handshakes.clone().acquire_owned() => permit.expect("semaphore is never closed"),
                _ = established.closed() => return,
            };
            let (tcp, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        tracing::warn!(reason = %error, "accept failed");
                        continue;
                    }
                },
                _ = established.closed() => return,
            };
            // Without TCP_NODELAY small replies wait out the peer's delayed ACK (~40 ms).
            if let Err(error) = tcp.set_nodelay(true) {
                tracing::warn!(peer = %peer, reason = %error, "cannot set TCP_NODELAY");
            }
            let (acceptor, established) = (acceptor.clone(), established.clone());
            tokio::spawn(async move {
                let _permit = permit;
                if let Some(stream) = handshake(&acceptor, tcp, peer, limits.handshake_timeout).await {
                    let _ = established.send(Ok(stream)).await;
                }
            });
        }
    });
    ReceiverStream::new(receiver)
}

async fn handshake(
    acceptor: &TlsAcceptor,
    tcp: TcpStream,
    peer: SocketAddr,
    limit: Duration,
) -> Option<TlsStream<TcpStream>> {
    match tokio::time::timeout(limit, acceptor.accept(tcp)).await {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(error)) => {
            tracing::warn!(peer = %peer, reason = %error, "tls handshake refused");
            None
        }
        Err(_) => {
            tracing::warn!(peer = %peer, timeout = ?limit, "tls handshake timed out");
            None
        }
    }
}
