//! Dialing a peer over mutual TLS 1.3. The handshake checks the peer's
//! certificate against the federation CA and the operator's CRL, and the
//! certificate's common name says which member answered: a peer is named by
//! what the CA signed, never by what it says of itself in Hello.

use super::peer::member_id_of;
use super::MAX_PEER_MESSAGE_BYTES;
use crate::proto::federation_client::FederationClient;
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_rustls::{client::TlsStream, TlsConnector};
use tonic::transport::{Channel, Endpoint, Uri};

/// How long a dial (TCP connect and TLS handshake) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A session's connection to one peer, and the member its certificate names.
pub struct Dialed {
    pub client: FederationClient<Channel>,
    pub member_id: String,
}

/// Connects to `addr` with `tls` (this node's certificate, trusting only the
/// federation CA and honouring its CRL).
pub async fn dial(addr: &str, tls: Arc<rustls::ClientConfig>) -> Result<Dialed, tonic::transport::Error> {
    let connector = PeerConnector::new(addr, tls);
    let member = connector.member.clone();
    let channel = Endpoint::from_shared(format!("http://{addr}"))?
        .connect_timeout(CONNECT_TIMEOUT)
        .http2_keep_alive_interval(crate::transport::KEEPALIVE_INTERVAL)
        .keep_alive_timeout(crate::transport::KEEPALIVE_TIMEOUT)
        .keep_alive_while_idle(true)
        .connect_with_connector(connector)
        .await?;
    let member_id = member.lock().expect("member lock").clone().unwrap_or_default();
    let client = FederationClient::new(channel)
        .max_decoding_message_size(MAX_PEER_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_PEER_MESSAGE_BYTES);
    Ok(Dialed { client, member_id })
}

/// Opens TLS connections for a channel and remembers the member the first
/// one reached; a reconnect that reaches another member is refused, so one
/// session always talks to one member.
#[derive(Clone)]
struct PeerConnector {
    addr: String,
    server_name: Result<ServerName<'static>, String>,
    tls: TlsConnector,
    member: Arc<Mutex<Option<String>>>,
}

impl PeerConnector {
    fn new(addr: &str, tls: Arc<rustls::ClientConfig>) -> Self {
        let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host).trim_matches(['[', ']']);
        let server_name = ServerName::try_from(host.to_string()).map_err(|e| format!("{host}: {e}"));
        PeerConnector { addr: addr.to_string(), server_name, tls: TlsConnector::from(tls), member: Arc::default() }
    }

    async fn connect(self) -> std::io::Result<TokioIo<TlsStream<TcpStream>>> {
        let name = self.server_name.clone().map_err(std::io::Error::other)?;
        let tcp = TcpStream::connect(&self.addr).await?;
        tcp.set_nodelay(true)?;
        let stream = self.tls.connect(name, tcp).await?;
        let leaf = stream.get_ref().1.peer_certificates().and_then(|chain| chain.first());
        let member_id = leaf
            .ok_or_else(|| "peer presented no certificate".to_string())
            .and_then(|der| member_id_of(der.as_ref()))
            .map_err(std::io::Error::other)?;
        let mut member = self.member.lock().expect("member lock");
        match member.as_deref() {
            Some(first) if first != member_id => {
                return Err(std::io::Error::other(format!("{} now answers as {member_id}, not {first}", self.addr)))
            }
            _ => *member = Some(member_id),
        }
        Ok(TokioIo::new(stream))
    }
}

impl tower_service::Service<Uri> for PeerConnector {
    type Response = TokioIo<TlsStream<TcpStream>>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Uri) -> Self::Future {
        Box::pin(self.clone().connect())
    }
}
