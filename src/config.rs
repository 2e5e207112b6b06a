//! Node configuration: `node.toml` in the node directory.
//!
//! Every field has a named default; unknown fields are refused so that a typo
//! never silently falls back to a default. `validate` turns a parsed file into
//! a checked [`Config`].

use crate::cir::Tlp;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Name of the config file inside a node directory.
pub const CONFIG_FILE: &str = "node.toml";
/// Default address of the local API: loopback only.
pub const DEFAULT_API_LISTEN: &str = "127.0.0.1:7300";
/// Default address of the peer service.
pub const DEFAULT_FEDERATION_LISTEN: &str = "0.0.0.0:7301";
/// Default seconds between anti-entropy rounds with a live peer.
pub const DEFAULT_ANTI_ENTROPY_SECS: u64 = 60;
/// Seconds between checks of the operator's CRL (NODE/crl.pem) for a new one.
pub const DEFAULT_CRL_RELOAD_SECS: u64 = 30;
/// Default days before certificate or card expiry from which a node warns.
pub const DEFAULT_EXPIRY_WARNING_DAYS: u32 = 30;
/// Default TLP for drafts that do not name one: community members only on request.
pub const DEFAULT_TLP: Tlp = Tlp::Amber;
/// Default indicator lifetime when a draft gives none.
pub const DEFAULT_VALID_DAYS: u32 = 30;
/// Longest indicator lifetime accepted from a local publisher.
pub const MAX_VALID_DAYS: u32 = 3650;
/// Largest stem jitter accepted: longer delays would only slow propagation.
pub const MAX_STEM_JITTER_MS: u32 = 1_000;
/// Default coarsening of `created_at`: shared times say the hour, not the minute.
pub const DEFAULT_TIME_GRANULARITY_SECS: u32 = 3600;
/// Coarsest granularity allowed: member cards start on a day boundary, so a
/// record's coarsened time never predates its author's card.
pub const MAX_TIME_GRANULARITY_SECS: u32 = 86_400;

/// Config failures.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("no config at {0}: run `cirfed node init` first")]
    Missing(PathBuf),
    #[error("cannot read {path}: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error("invalid config {path}: {reason}")]
    Parse { path: PathBuf, reason: String },
    #[error("invalid config: {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
}

/// The file as written on disk.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Local API for SOC tools.
    #[serde(default)]
    pub api: ApiSection,
    /// Peer service.
    #[serde(default)]
    pub federation: FederationSection,
    /// What the node fills into records it publishes.
    #[serde(default)]
    pub publish: PublishSection,
    /// Storage.
    #[serde(default)]
    pub store: StoreSection,
    /// What this node's lookups report, and its warninglists.
    #[serde(default)]
    pub accept: crate::accept::AcceptSection,
    /// The HTTP listener: TAXII 2.1, the MISP feed, blocklists (off by default).
    #[serde(default, skip_serializing_if = "is_default")]
    pub taxii: crate::http::TaxiiSection,
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

/// `[api]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSection {
    /// Listen address (default 127.0.0.1:7300). A non-loopback address needs `tls = true`.
    #[serde(default = "default_api_listen")]
    pub listen: String,
    /// Serve the local API over mutual TLS with the node certificate; clients
    /// need a certificate from `client_ca` (default: the federation CA).
    #[serde(default)]
    pub tls: bool,
    /// PEM file of the CA that issues local API client certificates.
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
}

/// `[federation]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FederationSection {
    /// Listen address of the peer service (default 0.0.0.0:7301).
    #[serde(default = "default_federation_listen")]
    pub listen: String,
    /// Peers to dial, as host:port.
    #[serde(default)]
    pub peers: Vec<String>,
    /// Seconds between anti-entropy rounds with each live peer (default 60).
    #[serde(default = "default_anti_entropy_secs")]
    pub anti_entropy_secs: u64,
    /// Records per second accepted from one peer (default 20000).
    #[serde(default = "default_peer_records_per_second")]
    pub max_peer_records_per_second: u32,
    /// Seconds between checks of NODE/crl.pem for a new CRL (default 30).
    #[serde(default = "default_crl_reload_secs")]
    pub crl_reload_secs: u64,
    /// Origin hiding: own CLEAR and GREEN records leave through a stem (Dandelion++).
    #[serde(default = "default_true")]
    pub stem: bool,
    /// Chance that a stem hop floods the record instead of passing it on (0-1].
    #[serde(default = "default_fluff_probability")]
    pub stem_fluff_probability: f64,
    /// Largest random delay before each stem hop, in milliseconds.
    #[serde(default = "default_stem_jitter_ms")]
    pub stem_max_jitter_ms: u32,
    /// Seconds a record may stay in a stem before its holder floods it.
    #[serde(default = "default_embargo_secs")]
    pub stem_embargo_secs: u32,
    /// What the node does once its last good CRL passes its next update and
    /// no newer one has come: "keep-serving" (default: peers stay connected,
    /// with the revocations it lists, and status and the log warn) or
    /// "fail-closed" (every peer handshake fails until a current CRL is
    /// installed, honest members included).
    #[serde(default)]
    pub crl_expired: CrlExpiredPolicy,
    /// Days before the node's certificate or member card expires from which
    /// status and the log warn (default 30).
    #[serde(default = "default_expiry_warning_days")]
    pub expiry_warning_days: u32,
}

/// `federation.crl_expired`: see [`FederationSection::crl_expired`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CrlExpiredPolicy {
    /// Keep serving with the last good CRL, loudly: a late CRL must not take
    /// the whole federation down.
    #[default]
    KeepServing,
    /// Refuse every handshake until a current CRL is installed.
    FailClosed,
}

/// `[publish]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishSection {
    /// TLP for drafts that name none (default amber).
    #[serde(default = "default_tlp")]
    pub default_tlp: Tlp,
    /// Indicator lifetime in days when a draft gives none (default 30).
    #[serde(default = "default_valid_days")]
    pub default_valid_days: u32,
    /// created_at is rounded down to a multiple of this (default 3600 s).
    #[serde(default = "default_time_granularity")]
    pub time_granularity_secs: u32,
    /// `[publish.scrub]`: what is redacted, generalised, hashed or refused
    /// before a record is signed (see `anonymize`).
    #[serde(default)]
    pub scrub: crate::anonymize::ScrubPolicy,
}

/// `[store]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    /// fsync every acknowledged write (default true); false still writes the
    /// WAL before acknowledging, which survives a process kill but not power loss.
    #[serde(default = "default_true")]
    pub sync_writes: bool,
}

fn default_api_listen() -> String {
    DEFAULT_API_LISTEN.into()
}
fn default_federation_listen() -> String {
    DEFAULT_FEDERATION_LISTEN.into()
}
fn default_peer_records_per_second() -> u32 {
    crate::federation::scoring::DEFAULT_PEER_RECORDS_PER_SECOND
}
fn default_anti_entropy_secs() -> u64 {
    DEFAULT_ANTI_ENTROPY_SECS
}
fn default_crl_reload_secs() -> u64 {
    DEFAULT_CRL_RELOAD_SECS
}
fn default_expiry_warning_days() -> u32 {
    DEFAULT_EXPIRY_WARNING_DAYS
}
fn default_tlp() -> Tlp {
    DEFAULT_TLP
}
fn default_valid_days() -> u32 {
    DEFAULT_VALID_DAYS
}
fn default_time_granularity() -> u32 {
    DEFAULT_TIME_GRANULARITY_SECS
}
fn default_fluff_probability() -> f64 {
    crate::node::stem::DEFAULT_FLUFF_PROBABILITY
}
fn default_stem_jitter_ms() -> u32 {
    crate::node::stem::DEFAULT_STEM_JITTER_MS
}
fn default_embargo_secs() -> u32 {
    crate::node::stem::DEFAULT_EMBARGO_SECS
}
fn default_true() -> bool {
    true
}

impl Default for ApiSection {
    fn default() -> Self {
        ApiSection { listen: default_api_listen(), tls: false, client_ca: None }
    }
}

impl Default for FederationSection {
    fn default() -> Self {
        FederationSection {
            listen: default_federation_listen(),
            peers: Vec::new(),
            anti_entropy_secs: DEFAULT_ANTI_ENTROPY_SECS,
            max_peer_records_per_second: default_peer_records_per_second(),
            crl_reload_secs: DEFAULT_CRL_RELOAD_SECS,
            stem: true,
            stem_fluff_probability: default_fluff_probability(),
            stem_max_jitter_ms: default_stem_jitter_ms(),
            stem_embargo_secs: default_embargo_secs(),
            crl_expired: CrlExpiredPolicy::default(),
            expiry_warning_days: DEFAULT_EXPIRY_WARNING_DAYS,
        }
    }
}

impl Default for PublishSection {
    fn default() -> Self {
        PublishSection {
            default_tlp: DEFAULT_TLP,
            default_valid_days: DEFAULT_VALID_DAYS,
            time_granularity_secs: DEFAULT_TIME_GRANULARITY_SECS,
            scrub: crate::anonymize::ScrubPolicy::default(),
        }
    }
}

impl Default for StoreSection {
    fn default() -> Self {
        StoreSection { sync_writes: true }
    }
}

/// A checked configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Local API address.
    pub api_listen: SocketAddr,
    /// Serve the local API over mutual TLS.
    pub api_tls: bool,
    /// CA for local API client certificates (None: the federation CA).
    pub api_client_ca: Option<PathBuf>,
    /// Peer service address.
    pub federation_listen: SocketAddr,
    /// Peers to dial.
    pub peers: Vec<String>,
    /// Interval of anti-entropy with each live peer.
    pub anti_entropy: std::time::Duration,
    /// Records per second accepted from one peer.
    pub max_peer_records_per_second: u32,
    /// How often the operator's CRL and the node's admission are checked for new ones.
    pub crl_reload: std::time::Duration,
    /// What to do once the last good CRL is past its next update.
    pub crl_expired: CrlExpiredPolicy,
    /// Warn this long before the certificate or card expires.
    pub expiry_warning: std::time::Duration,
    /// Origin hiding.
    pub stem: crate::node::stem::StemSettings,
    /// Publishing defaults.
    pub publish: PublishSection,
    /// fsync acknowledged writes.
    pub sync_writes: bool,
    /// `[accept]`, checked when the node opens (it reads the warninglist files).
    pub accept: crate::accept::AcceptSection,
    /// The HTTP listener, when on.
    pub http: Option<crate::http::HttpConfig>,
}

impl ConfigFile {
    /// Reads `node.toml` from a node directory.
    pub fn load(node_dir: &Path) -> Result<ConfigFile, ConfigError> {
        let path = node_dir.join(CONFIG_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => ConfigError::Missing(path.clone()),
            _ => ConfigError::Unreadable { path: path.clone(), reason: e.to_string() },
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse { path, reason: e.message().to_string() })
    }

    /// The file's text, with every default written out.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("config serializes")
    }

    /// Checks every value and resolves addresses.
    pub fn validate(self) -> Result<Config, ConfigError> {
        let api_listen = parse_addr("api.listen", &self.api.listen)?;
        if !api_listen.ip().is_loopback() && !self.api.tls {
            return Err(ConfigError::Invalid {
                field: "api.listen",
                reason: format!("{api_listen} is not a loopback address; set api.tls = true to expose the local API"),
            });
        }
        let federation_listen = parse_addr("federation.listen", &self.federation.listen)?;
        if self.federation.max_peer_records_per_second == 0 {
            return Err(ConfigError::Invalid {
                field: "federation.max_peer_records_per_second",
                reason: "must be at least 1".into(),
            });
        }
        let f = &self.federation;
        if !(f.stem_fluff_probability > 0.0 && f.stem_fluff_probability <= 1.0) {
            return Err(ConfigError::Invalid {
                field: "federation.stem_fluff_probability",
                reason: format!("{} is outside (0, 1]", f.stem_fluff_probability),
            });
        }
        if f.stem_embargo_secs == 0 || f.stem_max_jitter_ms > MAX_STEM_JITTER_MS {
            return Err(ConfigError::Invalid {
                field: "federation.stem_embargo_secs, stem_max_jitter_ms",
                reason: format!("the embargo must be at least 1 s and the jitter at most {MAX_STEM_JITTER_MS} ms"),
            });
        }
        let stem = crate::node::stem::StemSettings {
            enabled: f.stem,
            fluff_probability: f.stem_fluff_probability,
            max_jitter: std::time::Duration::from_millis(u64::from(f.stem_max_jitter_ms)),
            embargo: std::time::Duration::from_secs(u64::from(f.stem_embargo_secs)),
        };
        if self.federation.anti_entropy_secs == 0 {
            return Err(ConfigError::Invalid {
                field: "federation.anti_entropy_secs",
                reason: "must be at least 1".into(),
            });
        }
        if self.federation.crl_reload_secs == 0 {
            return Err(ConfigError::Invalid {
                field: "federation.crl_reload_secs",
                reason: "must be at least 1".into(),
            });
        }
        let publish = &self.publish;
        if publish.default_valid_days == 0 || publish.default_valid_days > MAX_VALID_DAYS {
            return Err(ConfigError::Invalid {
                field: "publish.default_valid_days",
                reason: format!("{} is outside 1 to {MAX_VALID_DAYS}", publish.default_valid_days),
            });
        }
        if publish.time_granularity_secs == 0 || publish.time_granularity_secs > MAX_TIME_GRANULARITY_SECS {
            return Err(ConfigError::Invalid {
                field: "publish.time_granularity_secs",
                reason: format!("{} is outside 1 to {MAX_TIME_GRANULARITY_SECS}", publish.time_granularity_secs),
            });
        }
        let scrub = &publish.scrub;
        if scrub.names.iter().chain(&scrub.internal_suffixes).any(|n| n.trim().trim_matches('.').is_empty()) {
            return Err(ConfigError::Invalid {
                field: "publish.scrub",
                reason: "names and internal_suffixes must not hold empty entries".into(),
            });
        }
        Ok(Config {
            api_listen,
            api_tls: self.api.tls,
            api_client_ca: self.api.client_ca,
            federation_listen,
            peers: self.federation.peers,
            anti_entropy: std::time::Duration::from_secs(self.federation.anti_entropy_secs),
            max_peer_records_per_second: self.federation.max_peer_records_per_second,
            crl_reload: std::time::Duration::from_secs(self.federation.crl_reload_secs),
            crl_expired: self.federation.crl_expired,
            expiry_warning: std::time::Duration::from_secs(u64::from(self.federation.expiry_warning_days) * 86_400),
            stem,
            publish: self.publish,
            sync_writes: self.store.sync_writes,
            accept: self.accept,
            http: self.taxii.validate().map_err(|e| ConfigError::Invalid { field: e.field, reason: e.reason })?,
        })
    }
}

fn parse_addr(field: &'static str, value: &str) -> Result<SocketAddr, ConfigError> {
    value.parse().map_err(|_| ConfigError::Invalid { field, reason: format!("'{value}' is not an ip:port address") })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        toml::from_str::<ConfigFile>(text)
            .map_err(|e| ConfigError::Parse { path: "t".into(), reason: e.to_string() })?
            .validate()
    }

    #[test]
    fn empty_file_gives_the_documented_defaults() {
        let config = parse("").unwrap();
        assert_eq!(config.api_listen.to_string(), DEFAULT_API_LISTEN);
        assert_eq!(config.federation_listen.to_string(), DEFAULT_FEDERATION_LISTEN);
        assert_eq!(config.publish.default_tlp, DEFAULT_TLP);
        assert_eq!(config.publish.time_granularity_secs, DEFAULT_TIME_GRANULARITY_SECS);
        assert!(config.sync_writes);
    }

    #[test]
    fn default_file_round_trips() {
        let text = ConfigFile::default().to_toml();
        assert!(parse(&text).is_ok(), "{text}");
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(matches!(parse("[api]\nlisten_addr = \"127.0.0.1:1\"\n"), Err(ConfigError::Parse { .. })));
    }

    #[test]
    fn non_loopback_api_without_tls_is_refused() {
        let err = parse("[api]\nlisten = \"0.0.0.0:7300\"\n").unwrap_err();
        assert!(err.to_string().contains("api.tls"), "{err}");
        assert!(parse("[api]\nlisten = \"0.0.0.0:7300\"\ntls = true\n").is_ok());
    }

    #[test]
    fn out_of_range_limits_are_refused() {
        assert!(parse("[publish]\ndefault_valid_days = 0\n").is_err());
        assert!(parse(&format!("[publish]\ndefault_valid_days = {}\n", MAX_VALID_DAYS + 1)).is_err());
        assert!(parse(&format!("[publish]\ntime_granularity_secs = {}\n", MAX_TIME_GRANULARITY_SECS + 1)).is_err());
        assert!(parse("[api]\nlisten = \"localhost\"\n").is_err());
        let err = parse("[federation]\ncrl_reload_secs = 0\n").unwrap_err();
        assert!(err.to_string().contains("crl_reload_secs"), "{err}");
    }

    #[test]
    fn missing_config_names_the_init_command() {
        let dir = tempfile::tempdir().unwrap();
        let err = ConfigFile::load(dir.path()).unwrap_err();
        assert!(err.to_string().contains("cirfed node init"), "{err}");
    }
}
