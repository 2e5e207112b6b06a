//! The TLS keeper: which CRL and which certificate the peer listener and the
//! links use. A CRL is installed only once verified (`identity::crl`), from
//! NODE/crl.pem or from a revocation record that carries it; a renewed
//! admission is picked up from the next handshake. Status hears of all of it.

use super::ServerError;
use crate::config::{Config, CrlExpiredPolicy};
use crate::federation::stopped;
use crate::identity::crl::{self, Crl, CrlError};
use crate::identity::pki::{self, CrlExpiry};
use crate::identity::{self, keys, IdentityError};
use crate::node::{unix_now, Node, TransportTrust};
use crate::proto::record::Body;
use prost::Message;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How often a stale CRL or a coming expiry is logged again.
pub const WARNING_REPEAT: Duration = Duration::from_secs(3_600);

/// Where an offered CRL came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    File,
    Record,
}

impl Source {
    fn name(self) -> &'static str {
        match self {
            Source::File => "file",
            Source::Record => "record",
        }
    }
}

/// Keeps the peer TLS configurations in force up to date.
pub struct TrustKeeper {
    dir: PathBuf,
    every: Duration,
    expiry: CrlExpiry,
    warn_before: Duration,
    node: Arc<Node>,
    /// The last good CRL: installed, and kept until a newer good one comes.
    crl: Option<(Crl, Source)>,
    /// NODE/crl.pem as last read, so an unchanged file is not checked again.
    file_seen: Option<Vec<u8>>,
    /// The admission and TLS key as last loaded, to notice a renewal.
    identity_seen: Vec<u8>,
    server_tls: watch::Sender<Arc<rustls::ServerConfig>>,
    client_tls: watch::Sender<Arc<rustls::ClientConfig>>,
    last_warning: Option<Instant>,
}

impl TrustKeeper {
    /// Loads the CRL (the newest authentic one of NODE/crl.pem and the stored
    /// revocations) and builds the first configurations.
    pub fn new(dir: &Path, config: &Config, node: Arc<Node>) -> Result<TrustKeeper, ServerError> {
        let expiry = match config.crl_expired {
            CrlExpiredPolicy::KeepServing => CrlExpiry::Tolerate,
            CrlExpiredPolicy::FailClosed => CrlExpiry::Enforce,
        };
        let ca = identity::load_node(dir)?.admission.federation.ca_cert;
        let file = read_crl_file(dir)?;
        let offered = node.watch_trust().borrow().crl.clone();
        let mut candidates = Vec::new();
        if let Some(bytes) = &file {
            match crl::authenticate(bytes, &ca) {
                Ok(crl) => candidates.push((crl, Source::File)),
                Err(error) => refused(&node, Source::File, &error),
            }
        }
        if let Some(der) = offered {
            match crl::authenticate(&der, &ca) {
                Ok(crl) => candidates.push((crl, Source::Record)),
                Err(error) => refused(&node, Source::Record, &error),
            }
        }
        // Across a restart the newest authentic CRL is the last good one, even if stale.
        let best = candidates.into_iter().max_by_key(|(crl, _)| crl.number);
        let pems: Vec<String> = best.iter().map(|(crl, _)| crl.pem()).collect();
        let (server, client) = peer_tls(dir, &pems, expiry)?;
        let mut keeper = TrustKeeper {
            dir: dir.to_path_buf(),
            every: config.crl_reload,
            expiry,
            warn_before: config.expiry_warning,
            node,
            crl: None,
            file_seen: file,
            identity_seen: identity_bytes(dir),
            server_tls: watch::channel(Arc::new(server)).0,
            client_tls: watch::channel(Arc::new(client)).0,
            last_warning: None,
        };
        if let Some((crl, source)) = best {
            keeper.installed(crl, source);
        }
        keeper.check_expiry();
        Ok(keeper)
    }

    /// The listener's configuration, replaced when the CRL or certificate changes.
    pub fn server_tls(&self) -> watch::Receiver<Arc<rustls::ServerConfig>> {
        self.server_tls.subscribe()
    }

    /// The links' configuration, replaced when the CRL or certificate changes.
    pub fn client_tls(&self) -> watch::Receiver<Arc<rustls::ClientConfig>> {
        self.client_tls.subscribe()
    }

    /// Checks on an interval and whenever a revocation arrives, until the node stops.
    pub async fn run(mut self, stop: watch::Receiver<bool>) {
        let stopping = stopped(stop);
        tokio::pin!(stopping);
        let mut trust = self.node.watch_trust();
        trust.mark_unchanged();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.every) => self.tick().await,
                changed = trust.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let offered = trust.borrow_and_update().crl.clone();
                    if let Some(der) = offered {
                        self.offer(&der, Source::Record);
                    }
                }
                _ = &mut stopping => return,
            }
        }
    }

    async fn tick(&mut self) {
        match read_crl_file(&self.dir) {
            Ok(Some(bytes)) if self.file_seen.as_ref() != Some(&bytes) => {
                self.offer(&bytes, Source::File);
                self.file_seen = Some(bytes);
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(reason = %error, "cannot read the operator crl"),
        }
        self.check_identity().await;
        self.check_expiry();
    }

    /// Installs `bytes` if it is an authentic, current CRL newer than the one in force.
    fn offer(&mut self, bytes: &[u8], source: Source) {
        let verified = self.ca().and_then(|ca| crl::verify(bytes, &ca, unix_now()).map_err(KeeperError::Crl));
        let crl = match verified {
            Ok(crl) => crl,
            Err(KeeperError::Crl(error)) => return refused(&self.node, source, &error),
            Err(KeeperError::Server(error)) => return tracing::warn!(reason = %error, "cannot check a crl"),
        };
        if let Some((current, _)) = &self.crl {
            if crl.number <= current.number {
                return;
            }
        }
        let pems = [crl.pem()];
        match peer_tls(&self.dir, &pems, self.expiry) {
            Ok((server, client)) => {
                self.server_tls.send_replace(Arc::new(server));
                self.client_tls.send_replace(Arc::new(client));
            }
            Err(error) => return tracing::warn!(reason = %error, "crl not installed: tls configuration failed"),
        }
        if source == Source::Record {
            self.write_crl_file(&pems[0]);
        }
        tracing::info!(number = crl.number, revoked = crl.revoked, source = source.name(), "operator crl installed");
        self.installed(crl, source);
    }

    /// Keeps a CRL that came in a record as NODE/crl.pem, for restarts and tools.
    fn write_crl_file(&mut self, pem: &str) {
        let path = self.dir.join(identity::CRL_FILE);
        match keys::write_public(&path, pem.as_bytes(), true) {
            Ok(()) => self.file_seen = Some(pem.as_bytes().to_vec()),
            Err(error) => tracing::warn!(path = %path.display(), reason = %error, "cannot keep the crl on disk"),
        }
    }

    fn installed(&mut self, crl: Crl, source: Source) {
        self.node.update_transport_trust(|t| {
            t.crl_number = crl.number;
            t.crl_this_update = crl.this_update;
            t.crl_next_update = crl.next_update;
            t.crl_revoked = crl.revoked as u32;
            t.crl_source = source.name().to_string();
        });
        self.crl = Some((crl, source));
    }

    /// A renewed admission (new certificate, new card) takes effect from the
    /// next handshake; its card is imported so peers learn of it.
    async fn check_identity(&mut self) {
        let seen = identity_bytes(&self.dir);
        if seen == self.identity_seen {
            return;
        }
        let pems: Vec<String> = self.crl.iter().map(|(crl, _)| crl.pem()).collect();
        // A join writes the key and the admission one after the other: a
        // mismatched pair is retried at the next tick.
        let (server, client) = match peer_tls(&self.dir, &pems, self.expiry) {
            Ok(configs) => configs,
            Err(error) => return tracing::debug!(reason = %error, "new admission not loaded yet"),
        };
        self.identity_seen = seen;
        self.server_tls.send_replace(Arc::new(server));
        self.client_tls.send_replace(Arc::new(client));
        if let Err(error) = self.adopt_admission().await {
            tracing::warn!(reason = %error, "renewed admission not adopted");
        }
        tracing::info!("renewed admission in force from the next handshake");
    }

    /// Imports the renewed admission's card, so that peers learn of its new
    /// validity (or of the signing key it rotates to), then signs and hashes
    /// with the renewed keys.
    async fn adopt_admission(&self) -> Result<(), ServerError> {
        let keys = identity::load_node(&self.dir)?;
        let card = keys.admission.card_envelope()?;
        let renewed = super::node_identity(keys)?;
        let node = self.node.clone();
        tokio::task::spawn_blocking(move || match node.import(vec![card]).into_iter().next() {
            Some(Err(error)) => Err(ServerError::Node(error)),
            _ => node.adopt_identity(renewed).map_err(ServerError::Node),
        })
        .await
        .map_err(|e| ServerError::Interrupted(e.to_string()))?
    }

    /// Status warnings: a stale CRL, a certificate or card near expiry.
    fn check_expiry(&mut self) {
        let now = unix_now();
        let mut warnings = Vec::new();
        if let Some((crl, _)) = self.crl.as_ref().filter(|(crl, _)| crl.is_stale(now)) {
            warnings.push(format!(
                "the operator's crl {} passed its next update at {}: {} with it until a newer one comes (federation.crl_expired)",
                crl.number,
                crl.next_update,
                match self.expiry {
                    CrlExpiry::Tolerate => "serving",
                    CrlExpiry::Enforce => "refusing every peer handshake",
                }
            ));
        }
        let (not_after, valid_until) = own_expiry(&self.dir).unwrap_or((0, 0));
        let horizon = now + self.warn_before.as_secs() as i64;
        for (what, until) in [("tls certificate", not_after), ("member card", valid_until)] {
            if until > 0 && until <= horizon {
                let days = (until - now).div_euclid(86_400);
                warnings.push(format!(
                    "the node's {what} expires at {until} (in {days} days): renew with `cirfed node renew`"
                ));
            }
        }
        let due = self.last_warning.is_none_or(|at| at.elapsed() >= WARNING_REPEAT);
        if !warnings.is_empty() && due {
            for warning in &warnings {
                tracing::warn!("{warning}");
            }
            self.last_warning = Some(Instant::now());
        }
        self.node.update_transport_trust(|t| {
            t.certificate_not_after = not_after;
            t.card_valid_until = valid_until;
            t.warnings = warnings;
        });
    }

    fn ca(&self) -> Result<String, KeeperError> {
        Ok(identity::load_node(&self.dir).map_err(ServerError::from)?.admission.federation.ca_cert)
    }
}

enum KeeperError {
    Crl(CrlError),
    Server(ServerError),
}

impl From<ServerError> for KeeperError {
    fn from(error: ServerError) -> Self {
        KeeperError::Server(error)
    }
}

fn refused(node: &Node, source: Source, error: &CrlError) {
    tracing::warn!(source = source.name(), reason = %error, "crl refused; the last good one stays in force");
    let note = format!("{} crl refused at {}: {error}", source.name(), unix_now());
    node.update_transport_trust(|t: &mut TransportTrust| t.crl_refused = note);
}

/// The end of the node's certificate and of its member card.
fn own_expiry(dir: &Path) -> Result<(i64, i64), IdentityError> {
    let admission = identity::load_node(dir)?.admission;
    let not_after = pki::cert_info(&admission.certificate)?.not_after;
    let card = admission.card_envelope()?;
    let valid_until = match crate::proto::Record::decode(card.record.as_slice()).ok().and_then(|r| r.body) {
        Some(Body::MemberCard(card)) => card.valid_until,
        _ => 0,
    };
    Ok((not_after, valid_until))
}

/// The admission and the TLS key, as one fingerprint of the node's identity.
fn identity_bytes(dir: &Path) -> Vec<u8> {
    let mut bytes = std::fs::read(dir.join(identity::ADMISSION_FILE)).unwrap_or_default();
    bytes.extend(std::fs::read(dir.join(identity::TLS_KEY_FILE)).unwrap_or_default());
    bytes.extend(std::fs::read(dir.join(identity::SIGNING_KEY_FILE)).unwrap_or_default());
    bytes
}

/// NODE/crl.pem, when there is one.
fn read_crl_file(dir: &Path) -> Result<Option<Vec<u8>>, ServerError> {
    let path = dir.join(identity::CRL_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ServerError::Io { path, reason: e.to_string() }),
    }
}

/// Mutual TLS 1.3 both ways between peers: the node's certificate, the
/// federation CA, and the CRL, for the listener and for dialing.
fn peer_tls(
    dir: &Path,
    crls: &[String],
    expiry: CrlExpiry,
) -> Result<(rustls::ServerConfig, rustls::ClientConfig), ServerError> {
    let keys = identity::load_node(dir)?;
    let (ca, cert, key) = (&keys.admission.federation.ca_cert, &keys.admission.certificate, &keys.tls_key);
    if !pki::cert_public_key_matches(cert, key).map_err(IdentityError::from)? {
        return Err(ServerError::Identity(IdentityError::BadAdmission(
            "the certificate is not for this node's TLS key".into(),
        )));
    }
    let server = pki::server_config_with(ca, cert, key, crls, expiry).map_err(IdentityError::from)?;
    let client = pki::client_config_with(ca, cert, key, crls, expiry).map_err(IdentityError::from)?;
    Ok((server, client))
}
