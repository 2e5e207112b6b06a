//! Federation transport PKI: the operator's X.509 CA, node keys and CSRs, node certificates,
//! the CRL, and the rustls configurations for mutual TLS 1.3 between nodes.
//!
//! Everything goes in and out as PEM text so the CLI can write it to files and ship it in join
//! requests and admissions. Keys are ECDSA P-256, which rustls with ring handles everywhere.
//! A node certificate names its holder only by the pseudonymous member id: the organisation
//! behind a member is known to the operator alone.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use rand::rngs::OsRng;
use rand::RngCore;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CertificateSigningRequestParams,
    DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    RevokedCertParams, SanType, SerialNumber, PKCS_ECDSA_P256_SHA256,
};
use rustls::crypto::CryptoProvider;
use rustls::server::{NoServerSessionStorage, WebPkiClientVerifier};
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{
    CertificateDer, CertificateRevocationListDer, CertificateSigningRequestDer, DnsName, PrivateKeyDer,
};
use time::{Duration, OffsetDateTime};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;

/// ALPN protocol id offered and accepted by nodes: gRPC runs over HTTP/2.
pub const ALPN_H2: &[u8] = b"h2";
/// Length in bytes of the random serial of a node certificate (128 bits, unguessable).
const SERIAL_LEN: usize = 16;
/// How far back a new certificate's validity starts, so peers whose clocks run a little
/// behind the operator's accept it straight away.
const CLOCK_SKEW_ALLOWANCE: Duration = Duration::hours(1);
/// Seconds in a day, for validity periods given in days.
const SECONDS_PER_DAY: i64 = 24 * 60 * 60;

/// Errors from building, reading and checking certificates and TLS configurations.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// A PEM input held no usable section of the expected kind.
    #[error("bad pem for the {what}")]
    BadPem {
        what: &'static str,
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    /// A DER structure inside valid PEM could not be parsed.
    #[error("cannot parse the {what}: {reason}")]
    Malformed { what: &'static str, reason: String },
    /// The certificate signing request is unparsable, badly signed or asks for something we refuse.
    #[error("certificate signing request is invalid: {reason}")]
    InvalidCsr { reason: String },
    /// A host name for a certificate is neither an IP address nor a valid DNS name.
    #[error("invalid host {host:?} for a certificate: not an ip address or dns name")]
    InvalidHost { host: String },
    /// A name or id that goes into a certificate is empty.
    #[error("the {what} must not be empty")]
    EmptyName { what: &'static str },
    /// A certificate serial given for revocation is not hex.
    #[error("certificate serial {serial:?} is not hex")]
    InvalidSerial { serial: String },
    /// A unix time cannot be represented in a certificate or CRL.
    #[error("time {unix} is out of range for a certificate")]
    InvalidTime { unix: i64 },
    /// A validity period ends before it starts.
    #[error("validity period is empty: it must end after it starts ({not_before} .. {not_after})")]
    EmptyValidity { not_before: i64, not_after: i64 },
    /// rcgen refused to build or sign a certificate, CSR or CRL.
    #[error("certificate generation failed")]
    Rcgen(#[from] rcgen::Error),
    /// rustls refused a certificate, key or configuration.
    #[error("tls configuration failed")]
    Rustls(#[from] rustls::Error),
    /// The client certificate verifier could not be built, for example from an unparsable CRL.
    #[error("client certificate verifier cannot be built")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    /// The private key is not the one whose public key the certificate carries.
    #[error("the {what} does not match its certificate")]
    KeyMismatch { what: &'static str },
    /// A certificate was not signed by the given CA.
    #[error("certificate is not issued by the federation ca: {reason}")]
    NotIssuedByCa { reason: String },
}

/// The federation's transport CA: its self-signed certificate and private key, both PEM.
#[derive(Clone)]
pub struct FederationCa {
    /// Self-signed CA certificate, given to every node as its only trust anchor.
    pub cert_pem: String,
    /// PKCS#8 private key; it never leaves the operator's machine.
    pub key_pem: String,
}

impl fmt::Debug for FederationCa {
    // The key is elided so a debug log of the CA cannot leak it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FederationCa").field("cert_pem", &self.cert_pem).field("key_pem", &"[elided]").finish()
    }
}

/// What a node certificate may be used for (its extended key usage).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CertUsage {
    /// Both dialling peers and accepting them: what an admitted node gets.
    #[default]
    ClientAndServer,
    /// Accepting connections only; such a certificate is refused when presented by a client.
    ServerOnly,
    /// Dialling peers only; such a certificate is refused when presented by a server.
    ClientOnly,
}

/// A node certificate just issued by the federation CA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedCert {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// Its serial as lowercase hex, the handle used to revoke it in the CRL.
    pub serial_hex: String,
    /// End of validity, unix seconds, so the operator can schedule renewal.
    pub not_after: i64,
}

/// What a certificate says about its holder, as read by `node join` and operator commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// Subject common name: the member id for node certificates.
    pub common_name: String,
    /// Issuer distinguished name, for messages.
    pub issuer: String,
    /// Serial as lowercase hex without leading zero bytes, as accepted by [`create_crl`].
    pub serial_hex: String,
    /// Subject alternative names: DNS names and IP addresses as text.
    pub sans: Vec<String>,
    /// Start of validity, unix seconds.
    pub not_before: i64,
    /// End of validity, unix seconds.
    pub not_after: i64,
}

/// Creates a self-signed federation CA (pathlen 0, keyCertSign and cRLSign) valid for `valid_days`.
pub fn create_ca(federation_name: &str, valid_days: u32) -> Result<FederationCa, PkiError> {
    if federation_name.trim().is_empty() {
        return Err(PkiError::EmptyName { what: "federation name" });
    }
    let (not_before, not_after) = validity_from_now(valid_days)?;
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = common_name(&format!("{federation_name} federation CA"));
    // pathlen 0: the CA signs node certificates directly and can never delegate to a sub-CA.
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.serial_number = Some(random_serial());
    params.not_before = not_before;
    params.not_after = not_after;
    // The CRL's authority key identifier is derived the same way (see create_crl).
    params.key_identifier_method = KeyIdMethod::Sha256;
    let cert = params.self_signed(&key)?;
    Ok(FederationCa { cert_pem: cert.pem(), key_pem: key.serialize_pem() })
}

/// Creates a node's P-256 TLS key and a CSR naming `hosts` (IP addresses or DNS names) as SANs.
pub fn create_node_key_and_csr(member_hint: &str, hosts: &[String]) -> Result<(String, String), PkiError> {
    let mut subject_alt_names = Vec::with_capacity(hosts.len());
    for host in hosts {
        subject_alt_names.push(san_for_host(host)?);
    }
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut params = CertificateParams::default();
    params.subject_alt_names = subject_alt_names;
    // The CSR's subject is only a label for the operator; the issued certificate's subject is
    // the member id chosen at admission.
    params.distinguished_name = common_name(member_hint);
    let csr = params.serialize_request(&key)?;
    Ok((key.serialize_pem(), csr.pem()?))
}

/// Issues a node certificate for the CSR's key and SANs, CN = member id, valid from now for `valid_days`.
pub fn issue_node_cert(
    ca: &FederationCa,
    csr_pem: &str,
    member_id: &str,
    valid_days: u32,
    usage: CertUsage,
) -> Result<IssuedCert, PkiError> {
    let (not_before, not_after) = validity_from_now(valid_days)?;
    issue(ca, csr_pem, member_id, not_before, not_after, usage)
}

/// Issues a node certificate with an explicit validity period in unix seconds (tests build expired ones).
pub fn issue_node_cert_with_validity(
    ca: &FederationCa,
    csr_pem: &str,
    member_id: &str,
    not_before: i64,
    not_after: i64,
    usage: CertUsage,
) -> Result<IssuedCert, PkiError> {
    if not_after <= not_before {
        return Err(PkiError::EmptyValidity { not_before, not_after });
    }
    issue(ca, csr_pem, member_id, unix_to_time(not_before)?, unix_to_time(not_after)?, usage)
}

/// Creates a CRL signed by the CA that revokes the given serials (hex).
pub fn create_crl(
    ca: &FederationCa,
    revoked_serials_hex: &[String],
    this_update: i64,
    next_update: i64,
    crl_number: u64,
) -> Result<String, PkiError> {
    if next_update <= this_update {
        return Err(PkiError::EmptyValidity { not_before: this_update, not_after: next_update });
    }
    let this_update = unix_to_time(this_update)?;
    let next_update = unix_to_time(next_update)?;
    let mut revoked_certs = Vec::with_capacity(revoked_serials_hex.len());
    for serial_hex in revoked_serials_hex {
        revoked_certs.push(RevokedCertParams {
            serial_number: parse_serial(serial_hex)?,
            // The operator's revocation list keeps no dates; this CRL's issue time is the latest
            // the revocation can have happened. Verifiers act on the serial being listed at all.
            revocation_time: this_update,
            reason_code: None,
            invalidity_date: None,
        });
    }
    let params = CertificateRevocationListParams {
        this_update,
        next_update,
        crl_number: SerialNumber::from(crl_number),
        issuing_distribution_point: None,
        revoked_certs,
        // Same method as the CA's subject key identifier (create_ca), so the CRL's authority key
        // identifier names the CA key.
        key_identifier_method: KeyIdMethod::Sha256,
    };
    let crl = params.signed_by(&ca_issuer(ca)?)?;
    Ok(crl.pem()?)
}

/// Tells whether the private key is the one whose public key the certificate carries.
pub fn cert_public_key_matches(cert_pem: &str, key_pem: &str) -> Result<bool, PkiError> {
    let cert_der = first_cert(cert_pem, "certificate")?;
    let key_der = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|source| PkiError::BadPem { what: "private key", source })?;
    key_matches_cert(&cert_der, key_der, "private key")
}

/// Reads the common name, issuer, serial, SANs and validity period of a certificate.
pub fn cert_info(cert_pem: &str) -> Result<CertInfo, PkiError> {
    let der = first_cert(cert_pem, "certificate")?;
    let cert = parse_cert(&der, "certificate")?;
    let common_name = cert
        .subject()
        .iter_common_name()
        .next()
        .map(|cn| cn.as_str().map(str::to_owned))
        .transpose()
        .map_err(|err| PkiError::Malformed { what: "certificate", reason: format!("common name: {err}") })?
        .unwrap_or_default();
    let mut sans = Vec::new();
    let san_extension = cert
        .subject_alternative_name()
        .map_err(|err| PkiError::Malformed { what: "certificate", reason: format!("subject alt names: {err}") })?;
    for name in san_extension.iter().flat_map(|ext| ext.value.general_names.iter()) {
        match name {
            GeneralName::DNSName(dns) => sans.push((*dns).to_owned()),
            GeneralName::IPAddress(octets) => sans.push(ip_from_octets(octets)?.to_string()),
            // Node certificates carry only DNS names and IP addresses (see issue); anything else
            // is shown rather than dropped so an odd certificate is noticed.
            other => sans.push(format!("{other:?}")),
        }
    }
    let serial = cert.raw_serial();
    let first_significant = serial.iter().position(|&byte| byte != 0).unwrap_or(serial.len().saturating_sub(1));
    Ok(CertInfo {
        common_name,
        issuer: cert.issuer().to_string(),
        serial_hex: hex::encode(&serial[first_significant..]),
        sans,
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
    })
}

/// Checks that the certificate was signed by the CA's key (signature only, not validity or usage).
pub fn verify_issued_by(cert_pem: &str, ca_cert_pem: &str) -> Result<(), PkiError> {
    // x509-parser's signature check answers exactly "did this CA sign it"; webpki's path
    // validation would also judge the current time and the TLS usage, which callers report
    // separately (cert_info). The check is available because rcgen's `ring` feature turns on
    // x509-parser's `verify` feature, which rcgen itself needs to check CSR signatures.
    let cert_der = first_cert(cert_pem, "certificate")?;
    let cert = parse_cert(&cert_der, "certificate")?;
    let mut refusal = None;
    // Like trust_anchors, any CA certificate of a rotation bundle may be the issuer.
    for ca_der in all_certs(ca_cert_pem, "federation ca certificate")? {
        let ca = parse_cert(&ca_der, "federation ca certificate")?;
        if cert.issuer().as_raw() != ca.subject().as_raw() {
            refusal = Some(format!(
                "its issuer is {:?}, the ca is {:?}",
                cert.issuer().to_string(),
                ca.subject().to_string()
            ));
            continue;
        }
        match cert.verify_signature(Some(ca.public_key())) {
            Ok(()) => return Ok(()),
            Err(err) => refusal = Some(format!("signature does not verify with the ca key: {err}")),
        }
    }
    Err(PkiError::NotIssuedByCa { reason: refusal.unwrap_or_default() })
}

/// Whether a CRL past its next update still revokes what it lists, or fails
/// every handshake (see `config::CrlExpiredPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrlExpiry {
    /// A CRL past its next update fails every handshake.
    Enforce,
    /// A CRL past its next update still applies: the node has checked it was
    /// current when it installed it, and warns while it is stale.
    Tolerate,
}

/// Builds the TLS 1.3 server configuration: client certificates from the CA required, CRLs enforced, ALPN h2.
pub fn server_config(
    ca_cert_pem: &str,
    cert_pem: &str,
    key_pem: &str,
    crl_pems: &[String],
) -> Result<rustls::ServerConfig, PkiError> {
    server_config_with(ca_cert_pem, cert_pem, key_pem, crl_pems, CrlExpiry::Enforce)
}

/// [`server_config`] with a choice of what a stale CRL does.
pub fn server_config_with(
    ca_cert_pem: &str,
    cert_pem: &str,
    key_pem: &str,
    crl_pems: &[String],
    expiry: CrlExpiry,
) -> Result<rustls::ServerConfig, PkiError> {
    let provider = provider();
    let roots = Arc::new(trust_anchors(ca_cert_pem)?);
    let crls = parse_crls(crl_pems)?;
    // Without enforce_revocation_expiration webpki silently accepts a CRL past its nextUpdate,
    // so a node cut off from fresh CRLs would keep trusting revoked peers indefinitely; with
    // Tolerate the node itself watches the CRL's age and says so.
    let builder = WebPkiClientVerifier::builder_with_provider(roots, provider.clone()).with_crls(crls);
    let verifier = match expiry {
        CrlExpiry::Enforce => builder.enforce_revocation_expiration().build()?,
        CrlExpiry::Tolerate => builder.build()?,
    };
    let (chain, key) = identity(cert_pem, key_pem)?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    // A resumed TLS session skips client certificate verification, so a peer revoked after its
    // first connection could come back on a ticket. Peers hold long-lived gRPC connections, so
    // full handshakes cost nothing that matters.
    config.session_storage = Arc::new(NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(config)
}

/// The HTTPS listener's TLS (TAXII, feeds): the node certificate, client
/// certificates from `client_ca` when given (mutual TLS) or none, and ALPN
/// for HTTP/2 and HTTP/1.1, which most TAXII and MISP clients speak.
pub fn http_server_config(
    cert_pem: &str,
    key_pem: &str,
    client_ca_pem: Option<&str>,
) -> Result<rustls::ServerConfig, PkiError> {
    let mut config = match client_ca_pem {
        Some(ca) => server_config(ca, cert_pem, key_pem, &[])?,
        None => {
            let (chain, key) = identity(cert_pem, key_pem)?;
            rustls::ServerConfig::builder_with_provider(provider())
                .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
                .with_no_client_auth()
                .with_single_cert(chain, key)?
        }
    };
    config.alpn_protocols = vec![ALPN_H2.to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Builds the TLS 1.3 client configuration: trusts only the CA, presents the node certificate, ALPN h2.
pub fn client_config(ca_cert_pem: &str, cert_pem: &str, key_pem: &str) -> Result<rustls::ClientConfig, PkiError> {
    client_config_with_crls(ca_cert_pem, cert_pem, key_pem, &[])
}

/// Like [`client_config`], and also refuses servers whose certificate is revoked in the given CRLs.
pub fn client_config_with_crls(
    ca_cert_pem: &str,
    cert_pem: &str,
    key_pem: &str,
    crl_pems: &[String],
) -> Result<rustls::ClientConfig, PkiError> {
    client_config_with(ca_cert_pem, cert_pem, key_pem, crl_pems, CrlExpiry::Enforce)
}

/// [`client_config_with_crls`] with a choice of what a stale CRL does.
pub fn client_config_with(
    ca_cert_pem: &str,
    cert_pem: &str,
    key_pem: &str,
    crl_pems: &[String],
    expiry: CrlExpiry,
) -> Result<rustls::ClientConfig, PkiError> {
    let provider = provider();
    let roots = Arc::new(trust_anchors(ca_cert_pem)?);
    let crls = parse_crls(crl_pems)?;
    let builder = rustls::client::WebPkiServerVerifier::builder_with_provider(roots, provider.clone()).with_crls(crls);
    let verifier = match expiry {
        CrlExpiry::Enforce => builder.enforce_revocation_expiration().build()?,
        CrlExpiry::Tolerate => builder.build()?,
    };
    let (chain, key) = identity(cert_pem, key_pem)?;
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_webpki_verifier(verifier)
        .with_client_auth_cert(chain, key)?;
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(config)
}

/// The crypto provider for every configuration, explicit so no process-wide default is needed.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Signs a node certificate for the CSR's key; the CSR contributes only its key and SANs.
fn issue(
    ca: &FederationCa,
    csr_pem: &str,
    member_id: &str,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    usage: CertUsage,
) -> Result<IssuedCert, PkiError> {
    if member_id.trim().is_empty() {
        return Err(PkiError::EmptyName { what: "member id" });
    }
    let csr_der = CertificateSigningRequestDer::from_pem_slice(csr_pem.as_bytes())
        .map_err(|source| PkiError::BadPem { what: "certificate signing request", source })?;
    // from_der also checks the CSR's self-signature, proving the requester holds the key.
    let csr = CertificateSigningRequestParams::from_der(&csr_der)
        .map_err(|err| PkiError::InvalidCsr { reason: err.to_string() })?;
    let mut subject_alt_names = Vec::with_capacity(csr.params.subject_alt_names.len());
    for san in &csr.params.subject_alt_names {
        match san {
            SanType::DnsName(dns) if DnsName::try_from(dns.as_str()).is_err() => {
                return Err(PkiError::InvalidCsr { reason: format!("{:?} is not a valid dns name", dns.as_str()) });
            }
            SanType::DnsName(_) | SanType::IpAddress(_) => subject_alt_names.push(san.clone()),
            other => {
                return Err(PkiError::InvalidCsr {
                    reason: format!("only dns names and ip addresses may be requested, not {other:?}"),
                });
            }
        }
    }
    if subject_alt_names.is_empty() && usage != CertUsage::ClientOnly {
        return Err(PkiError::InvalidCsr { reason: "a server certificate needs at least one host name".to_owned() });
    }

    // Everything but the key and SANs is decided here, never taken from the CSR: a requester
    // must not be able to ask for CA rights, other usages or a subject naming its organisation.
    let mut params = CertificateParams::default();
    params.distinguished_name = common_name(member_id);
    params.subject_alt_names = subject_alt_names;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = match usage {
        CertUsage::ClientAndServer => vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth],
        CertUsage::ServerOnly => vec![ExtendedKeyUsagePurpose::ServerAuth],
        CertUsage::ClientOnly => vec![ExtendedKeyUsagePurpose::ClientAuth],
    };
    let serial = random_serial();
    let serial_hex = hex::encode(serial.as_ref());
    params.serial_number = Some(serial);
    params.not_before = not_before;
    params.not_after = not_after;
    params.use_authority_key_identifier_extension = true;

    let cert = params.signed_by(&csr.public_key, &ca_issuer(ca)?)?;
    Ok(IssuedCert { cert_pem: cert.pem(), serial_hex, not_after: not_after.unix_timestamp() })
}

/// Loads the CA as an rcgen issuer after checking its key belongs to its certificate, since a
/// mismatched pair would sign certificates and CRLs that no node can verify.
fn ca_issuer(ca: &FederationCa) -> Result<Issuer<'static, KeyPair>, PkiError> {
    if !cert_public_key_matches(&ca.cert_pem, &ca.key_pem)? {
        return Err(PkiError::KeyMismatch { what: "federation ca key" });
    }
    let key = KeyPair::from_pem(&ca.key_pem)?;
    let ca_der = first_cert(&ca.cert_pem, "federation ca certificate")?;
    Ok(Issuer::from_ca_cert_der(&ca_der, key)?)
}

/// A fresh random serial: 16 bytes with the top bit clear and a non-zero first byte, so the
/// DER integer holds exactly these bytes and the hex we report is the hex in the certificate.
fn random_serial() -> SerialNumber {
    let mut bytes = [0u8; SERIAL_LEN];
    OsRng.fill_bytes(&mut bytes);
    bytes[0] = (bytes[0] & 0x7f).max(1);
    SerialNumber::from_slice(&bytes)
}

/// Parses a hex serial for the CRL; leading zero bytes do not matter, as in DER integers.
fn parse_serial(serial_hex: &str) -> Result<SerialNumber, PkiError> {
    let invalid = || PkiError::InvalidSerial { serial: serial_hex.to_owned() };
    let bytes = hex::decode(serial_hex.trim()).map_err(|_| invalid())?;
    if bytes.is_empty() {
        return Err(invalid());
    }
    Ok(SerialNumber::from_slice(&bytes))
}

fn san_for_host(host: &str) -> Result<SanType, PkiError> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    let invalid = || PkiError::InvalidHost { host: host.to_owned() };
    // rcgen accepts any ASCII as a DNS name; rustls' own syntax check keeps out names that no
    // peer could ever dial.
    DnsName::try_from(host).map_err(|_| invalid())?;
    Ok(SanType::DnsName(host.try_into().map_err(|_| invalid())?))
}

fn common_name(name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    dn
}

fn validity_from_now(valid_days: u32) -> Result<(OffsetDateTime, OffsetDateTime), PkiError> {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    if valid_days == 0 {
        return Err(PkiError::EmptyValidity { not_before: now, not_after: now });
    }
    let not_before = now - CLOCK_SKEW_ALLOWANCE.whole_seconds();
    let not_after = now + i64::from(valid_days) * SECONDS_PER_DAY;
    Ok((unix_to_time(not_before)?, unix_to_time(not_after)?))
}

fn unix_to_time(unix: i64) -> Result<OffsetDateTime, PkiError> {
    OffsetDateTime::from_unix_timestamp(unix).map_err(|_| PkiError::InvalidTime { unix })
}

fn ip_from_octets(octets: &[u8]) -> Result<IpAddr, PkiError> {
    if let Ok(v4) = <[u8; 4]>::try_from(octets) {
        return Ok(IpAddr::from(v4));
    }
    if let Ok(v6) = <[u8; 16]>::try_from(octets) {
        return Ok(IpAddr::from(v6));
    }
    Err(PkiError::Malformed { what: "certificate", reason: format!("ip address san of {} bytes", octets.len()) })
}

fn first_cert(pem: &str, what: &'static str) -> Result<CertificateDer<'static>, PkiError> {
    CertificateDer::from_pem_slice(pem.as_bytes()).map_err(|source| PkiError::BadPem { what, source })
}

pub(super) fn all_certs(pem: &str, what: &'static str) -> Result<Vec<CertificateDer<'static>>, PkiError> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| PkiError::BadPem { what, source })?;
    if certs.is_empty() {
        return Err(PkiError::BadPem { what, source: rustls_pki_types::pem::Error::NoItemsFound });
    }
    Ok(certs)
}

pub(super) fn parse_cert<'a>(der: &'a CertificateDer<'_>, what: &'static str) -> Result<X509Certificate<'a>, PkiError> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|err| PkiError::Malformed { what, reason: err.to_string() })?;
    Ok(cert)
}

/// Every certificate in the CA PEM becomes a trust anchor, so a bundle of old and new CA
/// certificates can be served while the federation rotates its CA.
fn trust_anchors(ca_cert_pem: &str) -> Result<RootCertStore, PkiError> {
    let mut roots = RootCertStore::empty();
    for der in all_certs(ca_cert_pem, "federation ca certificate")? {
        roots
            .add(der)
            .map_err(|err| PkiError::Malformed { what: "federation ca certificate", reason: err.to_string() })?;
    }
    Ok(roots)
}

/// The node's certificate chain and key; rustls checks that they belong together.
fn identity(cert_pem: &str, key_pem: &str) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), PkiError> {
    let chain = all_certs(cert_pem, "node certificate")?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|source| PkiError::BadPem { what: "node private key", source })?;
    // rustls would refuse a mismatched pair too, but with an error that does not say which
    // files to look at.
    if !key_matches_cert(&chain[0], key.clone_key(), "node private key")? {
        return Err(PkiError::KeyMismatch { what: "node private key" });
    }
    Ok((chain, key))
}

/// Compares the key's public half with the certificate's public key.
fn key_matches_cert(
    cert_der: &CertificateDer<'_>,
    key_der: PrivateKeyDer<'static>,
    what: &'static str,
) -> Result<bool, PkiError> {
    let cert = parse_cert(cert_der, "certificate")?;
    // Derive the public key the way rustls does when it loads a certificate and key, so this
    // answer agrees with what the TLS configurations accept.
    let signing_key = provider()
        .key_provider
        .load_private_key(key_der)
        .map_err(|err| PkiError::Malformed { what, reason: err.to_string() })?;
    let Some(key_spki) = signing_key.public_key() else {
        return Err(PkiError::Malformed { what, reason: "its public key cannot be derived".to_owned() });
    };
    Ok(key_spki.as_ref() == cert.public_key().raw)
}

fn parse_crls(crl_pems: &[String]) -> Result<Vec<CertificateRevocationListDer<'static>>, PkiError> {
    let mut crls = Vec::with_capacity(crl_pems.len());
    for crl_pem in crl_pems {
        let crl = CertificateRevocationListDer::from_pem_slice(crl_pem.as_bytes())
            .map_err(|source| PkiError::BadPem { what: "crl", source })?;
        crls.push(crl);
    }
    Ok(crls)
}

#[cfg(test)]
mod tests {
    use std::time::Duration as StdDuration;

    use rustls_pki_types::ServerName;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio_rustls::{TlsAcceptor, TlsConnector};

    use super::*;

    /// Upper bound on one test handshake, so a hang fails the test instead of stalling the suite.
    const HANDSHAKE_TIMEOUT: StdDuration = StdDuration::from_secs(10);
    /// Name the test server is dialled by; it is in the server certificate's SANs.
    const SERVER_HOST: &str = "node-a.example";

    /// A node's key and certificate as produced by the admission flow.
    struct Node {
        key_pem: String,
        cert: IssuedCert,
    }

    fn now() -> i64 {
        OffsetDateTime::now_utc().unix_timestamp()
    }

    fn hosts() -> Vec<String> {
        vec![SERVER_HOST.to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()]
    }

    fn admit(ca: &FederationCa, member_id: &str, usage: CertUsage) -> Node {
        let (key_pem, csr_pem) = create_node_key_and_csr("test node", &hosts()).unwrap();
        let cert = issue_node_cert(ca, &csr_pem, member_id, 30, usage).unwrap();
        Node { key_pem, cert }
    }

    fn admit_with_validity(ca: &FederationCa, member_id: &str, not_before: i64, not_after: i64) -> Node {
        let (key_pem, csr_pem) = create_node_key_and_csr("test node", &hosts()).unwrap();
        let cert =
            issue_node_cert_with_validity(ca, &csr_pem, member_id, not_before, not_after, CertUsage::ClientAndServer)
                .unwrap();
        Node { key_pem, cert }
    }

    fn server_for(ca: &FederationCa, node: &Node, crl_pems: &[String]) -> rustls::ServerConfig {
        server_config(&ca.cert_pem, &node.cert.cert_pem, &node.key_pem, crl_pems).unwrap()
    }

    fn client_for(ca: &FederationCa, node: &Node) -> rustls::ClientConfig {
        client_config(&ca.cert_pem, &node.cert.cert_pem, &node.key_pem).unwrap()
    }

    /// What each side of a test connection saw.
    struct Outcome {
        /// The server's handshake: the client chain it verified, or the error.
        server: Result<Vec<CertificateDer<'static>>, String>,
        /// The client's handshake plus reading the server's greeting, or the error.
        client: Result<(), String>,
    }

    /// Connects a client to a server over loopback TCP; the server greets after its handshake, so
    /// the client only succeeds if the server accepted it (TLS 1.3 clients finish first).
    async fn handshake(server: rustls::ServerConfig, client: rustls::ClientConfig, server_name: &str) -> Outcome {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(server));
        let server_task = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.map_err(|err| err.to_string())?;
            let mut tls = acceptor.accept(tcp).await.map_err(|err| err.to_string())?;
            let (_, connection) = tls.get_ref();
            assert_eq!(connection.protocol_version(), Some(rustls::ProtocolVersion::TLSv1_3));
            assert_eq!(connection.alpn_protocol(), Some(ALPN_H2));
            let peer = connection.peer_certificates().map(<[_]>::to_vec).unwrap_or_default();
            tls.write_all(b"ok").await.map_err(|err| err.to_string())?;
            tls.shutdown().await.map_err(|err| err.to_string())?;
            Ok::<_, String>(peer)
        });
        let connector = TlsConnector::from(Arc::new(client));
        let name = ServerName::try_from(server_name.to_owned()).unwrap();
        let client_side = async {
            let tcp = TcpStream::connect(addr).await.map_err(|err| err.to_string())?;
            let mut tls = connector.connect(name, tcp).await.map_err(|err| err.to_string())?;
            let mut greeting = [0u8; 2];
            tls.read_exact(&mut greeting).await.map_err(|err| err.to_string())?;
            assert_eq!(&greeting, b"ok");
            Ok::<_, String>(())
        };
        let client = tokio::time::timeout(HANDSHAKE_TIMEOUT, client_side).await.expect("client side timed out");
        let server = tokio::time::timeout(HANDSHAKE_TIMEOUT, server_task)
            .await
            .expect("server side timed out")
            .expect("server task panicked");
        Outcome { server, client }
    }

    fn assert_refused(outcome: &Outcome, expected_server_error: &str) {
        match &outcome.server {
            Ok(_) => panic!("server accepted a client it should have refused"),
            Err(err) => assert!(
                err.to_lowercase().contains(&expected_server_error.to_lowercase()),
                "server error {err:?} does not mention {expected_server_error:?}"
            ),
        }
        assert!(outcome.client.is_err(), "client went on as if accepted");
    }

    #[tokio::test]
    async fn mutual_tls13_handshake_succeeds_and_server_sees_the_client_certificate() {
        let ca = create_ca("test", 30).unwrap();
        let server = admit(&ca, "member-server", CertUsage::ClientAndServer);
        let client = admit(&ca, "member-client", CertUsage::ClientAndServer);
        let crl = create_crl(&ca, &[], now() - 60, now() + 3600, 1).unwrap();

        let outcome = handshake(server_for(&ca, &server, &[crl]), client_for(&ca, &client), SERVER_HOST).await;

        assert_eq!(outcome.client, Ok(()));
        let peer_chain = outcome.server.unwrap();
        let client_der = first_cert(&client.cert.cert_pem, "test").unwrap();
        assert_eq!(peer_chain.first(), Some(&client_der));
    }

    #[tokio::test]
    async fn handshake_succeeds_when_dialling_an_ip_address_san() {
        let ca = create_ca("test", 30).unwrap();
        let server = admit(&ca, "member-server", CertUsage::ClientAndServer);
        let client = admit(&ca, "member-client", CertUsage::ClientAndServer);
        let outcome = handshake(server_for(&ca, &server, &[]), client_for(&ca, &client), "127.0.0.1").await;
        assert_eq!(outcome.client, Ok(()));
        assert!(outcome.server.is_ok());
    }

    #[tokio::test]
    async fn client_without_certificate_is_refused() {
        let ca = create_ca("test", 30).unwrap();
        let server = admit(&ca, "member-server", CertUsage::ClientAndServer);
        let mut roots = RootCertStore::empty();
        roots.add(first_cert(&ca.cert_pem, "test").unwrap()).unwrap();
        let mut anonymous = rustls::ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        anonymous.alpn_protocols = vec![ALPN_H2.to_vec()];

        let outcome = handshake(server_for(&ca, &server, &[]), anonymous, SERVER_HOST).await;

        assert_refused(&outcome, "peer sent no certificates");
    }

    #[tokio::test]
    async fn client_certificate_from_another_ca_is_refused() {
        let ca = create_ca("test", 30).unwrap();
        let server = admit(&ca, "member-server", CertUsage::ClientAndServer);
        // A CA with another name is an unknown issuer; one that copies our CA's name is caught
        // by its signature.
        for (other_name, expected_error) in [("elsewhere", "unknownissuer"), ("test", "badsignature")] {
            let other_ca = create_ca(other_name, 30).unwrap();
            let intruder = admit(&other_ca, "member-client", CertUsage::ClientAndServer);
            // The intruder trusts the real CA so that only the server's check can stop it.
            let client = client_config(&ca.cert_pem, &intruder.cert.cert_pem, &intruder.key_pem).unwrap();

            let outcome = handshake(server_for(&ca, &server, &[]), client, SERVER_HOST).await;

            assert_refused(&outcome, expected_error);
        }
    }

    #[tokio::test]
    async fn expired_client_certificate_is_refused() {
        let ca = create_ca("test", 30).unwrap();
        let server = admit(&ca, "member-server", CertUsage::ClientAndServer);
        let expired = admit_with_validity(&ca, "member-client", now() - 10 * SECONDS_PER_DAY, now() - SECONDS_PER_DAY);

        let outcome = handshake(server_for(&ca, &server, &[]), client_for(&ca, &expired), SERVER_HOST).await;

        assert_refused(&outcome, "certificate expired");
    }

    #[tokio::test]
    async fn client_certificate_revoked_in_the_crl_is_refused() {
        let ca = create_ca("test", 30).unwrap();
        let server = admit(&ca, "member-server", CertUsage::ClientAndServer);
        let revoked = admit(&ca, "member-client", CertUsage::ClientAndServer);
        let crl = create_crl(&ca, std::slice::from_ref(&revoked.cert.serial_hex), now() - 60, now() + 3600, 2).unwrap();

        let outcome = handshake(server_for(&ca, &server, &[crl]), client_for(&ca, &revoked), SERVER_HOST).await;

        assert_refused(&outcome, "revoked");
    }

    #[tokio::test]
    async fn client_not_listed_in_the_crl_is_accepted() {
        let ca = create_ca("test", 30).unwrap();
        let server = admit(&ca, "member-server", CertUsage::ClientAndServer);
        let client = admit(&ca, "member-client", CertUsage::ClientAndServer);
        let other = admit(&ca, "member-other", CertUsage::ClientAndServer);
        let crl = create_crl(&ca, &[other.cert.serial_hex], now() - 60, now() + 3600, 3).unwrap();

        let outcome = handshake(server_for(&ca, &server, &[crl]), client_for(&ca, &client), SERVER_HOST).await;

        assert_eq!(outcome.client, Ok(()));
        assert!(outcome.server.is_ok());
    }

    #[tokio::test]
    async fn server_only_certificate_used_as_a_client_is_refused() {
        let ca = create_ca("test", 30).unwrap();
        let server = admit(&ca, "member-server", CertUsage::ClientAndServer);
        let server_only = admit(&ca, "member-client", CertUsage::ServerOnly);

        let outcome = handshake(server_for(&ca, &server, &[]), client_for(&ca, &server_only), SERVER_HOST).await;

        assert_refused(&outcome, "does not allow extended key usage for client authentication");
    }

    #[tokio::test]
    async fn expired_crl_makes_the_handshake_fail() {
        let ca = create_ca("test", 30).unwrap();
        let server = admit(&ca, "member-server", CertUsage::ClientAndServer);
        let client = admit(&ca, "member-client", CertUsage::ClientAndServer);
        let stale_crl = create_crl(&ca, &[], now() - 2 * SECONDS_PER_DAY, now() - SECONDS_PER_DAY, 4).unwrap();

        let outcome = handshake(server_for(&ca, &server, &[stale_crl]), client_for(&ca, &client), SERVER_HOST).await;

        assert_refused(&outcome, "certificate revocation list expired");
    }

    #[tokio::test]
    async fn crl_from_another_ca_makes_the_handshake_fail() {
        let ca = create_ca("test", 30).unwrap();
        let other_ca = create_ca("test", 30).unwrap();
        let server = admit(&ca, "member-server", CertUsage::ClientAndServer);
        let client = admit(&ca, "member-client", CertUsage::ClientAndServer);
        // Same issuer name, wrong key: a forged CRL must not count as the real one.
        let forged_crl = create_crl(&other_ca, &[], now() - 60, now() + 3600, 5).unwrap();

        let outcome = handshake(server_for(&ca, &server, &[forged_crl]), client_for(&ca, &client), SERVER_HOST).await;

        assert!(outcome.server.is_err(), "server accepted with a forged crl");
        assert!(outcome.client.is_err());
    }

    #[tokio::test]
    async fn client_refuses_a_server_revoked_in_its_crl() {
        let ca = create_ca("test", 30).unwrap();
        let server = admit(&ca, "member-server", CertUsage::ClientAndServer);
        let client = admit(&ca, "member-client", CertUsage::ClientAndServer);
        let crl = create_crl(&ca, std::slice::from_ref(&server.cert.serial_hex), now() - 60, now() + 3600, 6).unwrap();
        let client_config =
            client_config_with_crls(&ca.cert_pem, &client.cert.cert_pem, &client.key_pem, &[crl]).unwrap();

        let outcome = handshake(server_for(&ca, &server, &[]), client_config, SERVER_HOST).await;

        let err = outcome.client.unwrap_err();
        assert!(err.to_lowercase().contains("revoked"), "{err}");
        assert!(outcome.server.is_err());
    }

    #[tokio::test]
    async fn client_refuses_a_server_not_named_for_the_dialled_host() {
        let ca = create_ca("test", 30).unwrap();
        let server = admit(&ca, "member-server", CertUsage::ClientAndServer);
        let client = admit(&ca, "member-client", CertUsage::ClientAndServer);

        let outcome = handshake(server_for(&ca, &server, &[]), client_for(&ca, &client), "node-b.example").await;

        let err = outcome.client.unwrap_err();
        assert!(err.to_lowercase().contains("not valid for name"), "{err}");
    }

    #[test]
    fn ca_certificate_is_a_pathlen_zero_ca_for_signing_certs_and_crls() {
        let ca = create_ca("acme sharing", 365).unwrap();
        let der = first_cert(&ca.cert_pem, "test").unwrap();
        let cert = parse_cert(&der, "test").unwrap();
        let constraints = cert.basic_constraints().unwrap().unwrap().value;
        assert!(constraints.ca);
        assert_eq!(constraints.path_len_constraint, Some(0));
        let usage = cert.key_usage().unwrap().unwrap().value;
        assert!(usage.key_cert_sign() && usage.crl_sign());
        assert!(!usage.digital_signature());
        let info = cert_info(&ca.cert_pem).unwrap();
        assert_eq!(info.common_name, "acme sharing federation CA");
        assert!(info.not_after - now() > 364 * SECONDS_PER_DAY);
        assert!(cert_public_key_matches(&ca.cert_pem, &ca.key_pem).unwrap());
        assert!(!format!("{ca:?}").contains("PRIVATE KEY"));
    }

    #[test]
    fn issued_certificate_names_the_member_id_and_the_csr_hosts() {
        let ca = create_ca("test", 30).unwrap();
        let (key_pem, csr_pem) = create_node_key_and_csr("Example Cloud Ltd", &hosts()).unwrap();
        let issued = issue_node_cert(&ca, &csr_pem, "m-7f3a9c", 90, CertUsage::ClientAndServer).unwrap();

        let info = cert_info(&issued.cert_pem).unwrap();
        assert_eq!(info.common_name, "m-7f3a9c");
        assert!(!issued.cert_pem.is_empty());
        assert_eq!(info.sans, hosts());
        assert_eq!(info.serial_hex, issued.serial_hex);
        assert_eq!(issued.serial_hex.len(), 2 * SERIAL_LEN);
        assert_eq!(info.not_after, issued.not_after);
        assert!(info.not_before <= now());
        assert!(info.issuer.contains("test federation CA"), "{}", info.issuer);
        assert!(cert_public_key_matches(&issued.cert_pem, &key_pem).unwrap());
        verify_issued_by(&issued.cert_pem, &ca.cert_pem).unwrap();

        // The organisation named in the CSR never reaches the certificate.
        let der = first_cert(&issued.cert_pem, "test").unwrap();
        let cert = parse_cert(&der, "test").unwrap();
        assert!(!cert.subject().to_string().contains("Example Cloud"));
        assert!(!cert.is_ca());
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.client_auth && eku.server_auth);
    }

    #[test]
    fn usage_sets_the_extended_key_usage() {
        let ca = create_ca("test", 30).unwrap();
        for (usage, client_auth, server_auth) in
            [(CertUsage::ServerOnly, false, true), (CertUsage::ClientOnly, true, false)]
        {
            let node = admit(&ca, "m-1", usage);
            let der = first_cert(&node.cert.cert_pem, "test").unwrap();
            let cert = parse_cert(&der, "test").unwrap();
            let eku = cert.extended_key_usage().unwrap().unwrap().value;
            assert_eq!((eku.client_auth, eku.server_auth), (client_auth, server_auth), "{usage:?}");
        }
    }

    #[test]
    fn serials_of_issued_certificates_differ() {
        let ca = create_ca("test", 30).unwrap();
        let first = admit(&ca, "m-1", CertUsage::ClientAndServer);
        let second = admit(&ca, "m-1", CertUsage::ClientAndServer);
        assert_ne!(first.cert.serial_hex, second.cert.serial_hex);
    }

    #[test]
    fn key_matches_only_its_own_certificate() {
        let ca = create_ca("test", 30).unwrap();
        let node = admit(&ca, "m-1", CertUsage::ClientAndServer);
        let (other_key, _) = create_node_key_and_csr("other", &hosts()).unwrap();
        assert!(cert_public_key_matches(&node.cert.cert_pem, &node.key_pem).unwrap());
        assert!(!cert_public_key_matches(&node.cert.cert_pem, &other_key).unwrap());
        assert!(!cert_public_key_matches(&node.cert.cert_pem, &ca.key_pem).unwrap());
    }

    #[test]
    fn certificate_from_another_ca_is_not_issued_by_ours() {
        let ca = create_ca("test", 30).unwrap();
        let other_ca = create_ca("test", 30).unwrap();
        let node = admit(&other_ca, "m-1", CertUsage::ClientAndServer);
        let err = verify_issued_by(&node.cert.cert_pem, &ca.cert_pem).unwrap_err();
        assert!(matches!(err, PkiError::NotIssuedByCa { .. }), "{err:?}");
        let stranger = create_ca("elsewhere", 30).unwrap();
        let node = admit(&stranger, "m-1", CertUsage::ClientAndServer);
        let err = verify_issued_by(&node.cert.cert_pem, &ca.cert_pem).unwrap_err();
        assert!(err.to_string().contains("issuer"), "{err}");
    }

    #[test]
    fn any_ca_of_a_rotation_bundle_can_be_the_issuer() {
        let old_ca = create_ca("test", 30).unwrap();
        let new_ca = create_ca("test", 30).unwrap();
        let bundle = format!("{}{}", old_ca.cert_pem, new_ca.cert_pem);
        let node = admit(&new_ca, "m-1", CertUsage::ClientAndServer);
        verify_issued_by(&node.cert.cert_pem, &bundle).unwrap();
        assert!(verify_issued_by(&node.cert.cert_pem, &old_ca.cert_pem).is_err());
    }

    #[test]
    fn ca_key_that_does_not_match_its_certificate_cannot_issue() {
        let ca = create_ca("test", 30).unwrap();
        let other_ca = create_ca("test", 30).unwrap();
        let mixed = FederationCa { cert_pem: ca.cert_pem.clone(), key_pem: other_ca.key_pem };
        let (_, csr_pem) = create_node_key_and_csr("n", &hosts()).unwrap();
        let err = issue_node_cert(&mixed, &csr_pem, "m-1", 30, CertUsage::ClientAndServer).unwrap_err();
        assert!(matches!(err, PkiError::KeyMismatch { .. }), "{err:?}");
    }

    #[test]
    fn tampered_csr_is_invalid() {
        let ca = create_ca("test", 30).unwrap();
        let (_, csr_pem) = create_node_key_and_csr("n", &hosts()).unwrap();
        let mut der = CertificateSigningRequestDer::from_pem_slice(csr_pem.as_bytes()).unwrap().as_ref().to_vec();
        // Flip a bit in the requested host name; the requester's signature no longer covers it.
        let at = der.windows(SERVER_HOST.len()).position(|window| window == SERVER_HOST.as_bytes()).unwrap();
        der[at] ^= 0x01;
        let tampered =
            format!("-----BEGIN CERTIFICATE REQUEST-----\n{}\n-----END CERTIFICATE REQUEST-----\n", base64_lines(&der));
        let err = issue_node_cert(&ca, &tampered, "m-1", 30, CertUsage::ClientAndServer).unwrap_err();
        assert!(matches!(err, PkiError::InvalidCsr { .. }), "{err:?}");
    }

    #[test]
    fn csr_without_hosts_is_refused_for_a_server_certificate() {
        let ca = create_ca("test", 30).unwrap();
        let (_, csr_pem) = create_node_key_and_csr("n", &[]).unwrap();
        let err = issue_node_cert(&ca, &csr_pem, "m-1", 30, CertUsage::ClientAndServer).unwrap_err();
        assert!(matches!(err, PkiError::InvalidCsr { .. }), "{err:?}");
        issue_node_cert(&ca, &csr_pem, "m-1", 30, CertUsage::ClientOnly).unwrap();
    }

    #[test]
    fn bad_inputs_get_errors_naming_what_was_wrong() {
        let ca = create_ca("test", 30).unwrap();
        let node = admit(&ca, "m-1", CertUsage::ClientAndServer);
        let err = server_config("not pem", &node.cert.cert_pem, &node.key_pem, &[]).unwrap_err();
        assert_eq!(err.to_string(), "bad pem for the federation ca certificate");
        let err = client_config(&ca.cert_pem, &node.cert.cert_pem, "not pem").unwrap_err();
        assert_eq!(err.to_string(), "bad pem for the node private key");
        let err = server_config(&ca.cert_pem, &node.cert.cert_pem, &node.key_pem, &["junk".to_owned()]).unwrap_err();
        assert_eq!(err.to_string(), "bad pem for the crl");
        let err = issue_node_cert(&ca, "junk", "m-1", 30, CertUsage::ClientAndServer).unwrap_err();
        assert_eq!(err.to_string(), "bad pem for the certificate signing request");
        let (_, csr_pem) = create_node_key_and_csr("n", &hosts()).unwrap();
        assert!(matches!(
            issue_node_cert(&ca, &csr_pem, " ", 30, CertUsage::ClientAndServer),
            Err(PkiError::EmptyName { .. })
        ));
        assert!(matches!(
            issue_node_cert(&ca, &csr_pem, "m-1", 0, CertUsage::ClientAndServer),
            Err(PkiError::EmptyValidity { .. })
        ));
        assert!(matches!(create_crl(&ca, &["xyz".to_owned()], 0, 10, 1), Err(PkiError::InvalidSerial { .. })));
        assert!(matches!(create_crl(&ca, &[], 10, 10, 1), Err(PkiError::EmptyValidity { .. })));
        for bad_host in ["bad host", "exa\u{7f}mple.org", "", "*.example.org"] {
            let err = create_node_key_and_csr("n", &[bad_host.to_owned()]).unwrap_err();
            assert!(matches!(err, PkiError::InvalidHost { .. }), "{bad_host:?}: {err:?}");
        }
    }

    #[test]
    fn node_key_that_is_not_the_certificates_is_refused_by_both_configs() {
        let ca = create_ca("test", 30).unwrap();
        let node = admit(&ca, "m-1", CertUsage::ClientAndServer);
        let (other_key, _) = create_node_key_and_csr("other", &hosts()).unwrap();
        let err = server_config(&ca.cert_pem, &node.cert.cert_pem, &other_key, &[]).unwrap_err();
        assert_eq!(err.to_string(), "the node private key does not match its certificate");
        let err = client_config(&ca.cert_pem, &node.cert.cert_pem, &other_key).unwrap_err();
        assert!(matches!(err, PkiError::KeyMismatch { .. }), "{err:?}");
    }

    /// Base64 with 64-character lines, to hand-build PEM in tests without another dependency.
    fn base64_lines(bytes: &[u8]) -> String {
        const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut encoded = String::new();
        for chunk in bytes.chunks(3) {
            let block = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
            let bits = u32::from_be_bytes([0, block[0], block[1], block[2]]);
            for index in 0..4 {
                if index <= chunk.len() {
                    encoded.push(ALPHABET[(bits >> (18 - 6 * index) & 0x3f) as usize] as char);
                } else {
                    encoded.push('=');
                }
            }
        }
        encoded.as_bytes().chunks(64).map(|line| std::str::from_utf8(line).unwrap()).collect::<Vec<_>>().join("\n")
    }
}
