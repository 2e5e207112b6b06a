//! `[taxii]` in node.toml: the HTTP listener (TAXII 2.1, the MISP feed,
//! blocklists), off unless `listen` is set.

use super::auth::{Scope, Users};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Default largest request body (a POSTed envelope), bytes.
pub const DEFAULT_MAX_CONTENT_LENGTH: u64 = 10 << 20;
/// Largest `max_content_length` a config may set.
pub const MAX_CONTENT_LENGTH_CEILING: u64 = 256 << 20;
/// Default most objects in one page; a client's `limit` is capped at it.
pub const DEFAULT_MAX_PAGE_SIZE: usize = 1_000;
/// Largest `max_page_size` a config may set: a page is held in memory while it is written.
pub const MAX_PAGE_SIZE_CEILING: usize = 10_000;
/// Default seconds a request may take before it is answered 408.
pub const DEFAULT_REQUEST_TIMEOUT_SECS: u64 = 30;

/// `[taxii]` as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaxiiSection {
    /// Listen address; the listener is off when unset. A non-loopback address needs `tls = true`.
    #[serde(default)]
    pub listen: Option<String>,
    /// Serve HTTPS with the node certificate.
    #[serde(default)]
    pub tls: bool,
    /// PEM file of a CA: with it, clients must also present a certificate it
    /// issued (mutual TLS, on top of their token). Needs `tls = true`.
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
    /// Largest request body in bytes (default 10 MiB); larger ones answer 413.
    #[serde(default = "default_max_content_length")]
    pub max_content_length: u64,
    /// Most objects per page (default 1000); a larger `limit` is capped.
    #[serde(default = "default_max_page_size")]
    pub max_page_size: usize,
    /// Seconds a request may take (default 30); slower ones answer 408.
    #[serde(default = "default_request_timeout_secs")]
    pub request_timeout_secs: u64,
    /// Who may read and write what.
    #[serde(default)]
    pub users: Vec<UserSection>,
}

impl Default for TaxiiSection {
    fn default() -> Self {
        TaxiiSection {
            listen: None,
            tls: false,
            client_ca: None,
            max_content_length: DEFAULT_MAX_CONTENT_LENGTH,
            max_page_size: DEFAULT_MAX_PAGE_SIZE,
            request_timeout_secs: DEFAULT_REQUEST_TIMEOUT_SECS,
            users: Vec::new(),
        }
    }
}

/// `[[taxii.users]]`: one client (a SIEM, a TIP, a firewall) and its rights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSection {
    /// Name, also the HTTP Basic user name.
    pub name: String,
    /// SHA-256 (hex) of the user's token, as `cirfed node http-user` prints
    /// it; the token itself is never stored.
    pub token_sha256: String,
    /// Scopes it may read: collection aliases ("analysts", "community"),
    /// "misp-feed", "blocklist", or "*".
    #[serde(default)]
    pub read: Vec<String>,
    /// Collections it may write to (POST objects), or "*".
    #[serde(default)]
    pub write: Vec<String>,
}

/// `[taxii]`, checked.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Where to listen.
    pub listen: SocketAddr,
    /// HTTPS.
    pub tls: bool,
    /// CA for client certificates (mutual TLS).
    pub client_ca: Option<PathBuf>,
    /// Limits.
    pub limits: HttpLimits,
    /// Users and their rights.
    pub users: Users,
}

/// The listener's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Largest request body.
    pub max_content_length: usize,
    /// Most objects per page.
    pub max_page_size: usize,
    /// Longest a request may take.
    pub request_timeout: Duration,
}

/// Why `[taxii]` cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("taxii.{field}: {reason}")]
pub struct HttpConfigError {
    /// The field at fault.
    pub field: &'static str,
    /// What is wrong.
    pub reason: String,
}

fn invalid(field: &'static str, reason: impl Into<String>) -> HttpConfigError {
    HttpConfigError { field, reason: reason.into() }
}

impl TaxiiSection {
    /// The checked listener config, or `None` when the listener is off.
    pub fn validate(&self) -> Result<Option<HttpConfig>, HttpConfigError> {
        let Some(listen) = &self.listen else { return Ok(None) };
        let listen: SocketAddr =
            listen.parse().map_err(|_| invalid("listen", format!("{listen:?} is not an ip:port address")))?;
        if !listen.ip().is_loopback() && !self.tls {
            return Err(invalid(
                "listen",
                format!("{listen} is not a loopback address; set taxii.tls = true to serve it"),
            ));
        }
        if self.client_ca.is_some() && !self.tls {
            return Err(invalid("client_ca", "client certificates need taxii.tls = true"));
        }
        if !(1024..=MAX_CONTENT_LENGTH_CEILING).contains(&self.max_content_length) {
            return Err(invalid(
                "max_content_length",
                format!("{} is outside 1024 to {MAX_CONTENT_LENGTH_CEILING}", self.max_content_length),
            ));
        }
        if !(1..=MAX_PAGE_SIZE_CEILING).contains(&self.max_page_size) {
            return Err(invalid(
                "max_page_size",
                format!("{} is outside 1 to {MAX_PAGE_SIZE_CEILING}", self.max_page_size),
            ));
        }
        if self.request_timeout_secs == 0 {
            return Err(invalid("request_timeout_secs", "must be at least 1"));
        }
        let users = Users::from_sections(&self.users).map_err(|reason| invalid("users", reason))?;
        Ok(Some(HttpConfig {
            listen,
            tls: self.tls,
            client_ca: self.client_ca.clone(),
            limits: HttpLimits {
                max_content_length: self.max_content_length as usize,
                max_page_size: self.max_page_size,
                request_timeout: Duration::from_secs(self.request_timeout_secs),
            },
            users,
        }))
    }
}

fn default_max_content_length() -> u64 {
    DEFAULT_MAX_CONTENT_LENGTH
}

fn default_max_page_size() -> usize {
    DEFAULT_MAX_PAGE_SIZE
}

fn default_request_timeout_secs() -> u64 {
    DEFAULT_REQUEST_TIMEOUT_SECS
}

/// Checks a scope name as the config and the `http-user` command take it.
pub fn check_scope(name: &str) -> Result<Scope, String> {
    name.parse()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(listen: &str) -> TaxiiSection {
        TaxiiSection { listen: Some(listen.into()), ..TaxiiSection::default() }
    }

    #[test]
    fn the_listener_is_off_unless_listen_is_set() {
        assert!(TaxiiSection::default().validate().unwrap().is_none());
        assert!(section("127.0.0.1:7380").validate().unwrap().is_some());
    }

    #[test]
    fn plain_http_is_refused_off_loopback() {
        let error = section("0.0.0.0:7380").validate().unwrap_err();
        assert_eq!(error.field, "listen");
        let served = TaxiiSection { tls: true, ..section("0.0.0.0:7380") };
        assert!(served.validate().unwrap().is_some());
    }

    #[test]
    fn every_limit_is_checked_with_its_name() {
        let cases = [
            (TaxiiSection { max_content_length: 10, ..section("127.0.0.1:1") }, "max_content_length"),
            (TaxiiSection { max_page_size: 0, ..section("127.0.0.1:1") }, "max_page_size"),
            (TaxiiSection { max_page_size: MAX_PAGE_SIZE_CEILING + 1, ..section("127.0.0.1:1") }, "max_page_size"),
            (TaxiiSection { request_timeout_secs: 0, ..section("127.0.0.1:1") }, "request_timeout_secs"),
            (TaxiiSection { client_ca: Some("ca.pem".into()), ..section("127.0.0.1:1") }, "client_ca"),
        ];
        for (section, field) in cases {
            assert_eq!(section.validate().unwrap_err().field, field);
        }
    }
}
