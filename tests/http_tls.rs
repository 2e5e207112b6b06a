//! The HTTP listener over HTTPS with client certificates (`taxii.tls`,
//! `taxii.client_ca`): a client with a certificate from the CA and a token is
//! served; one without a certificate never reaches a handler.

mod common;

use cirfed::http::auth::new_token;
use cirfed::identity::pki;
use cirfed::interop::taxii::TAXII_MEDIA_TYPE;
use common::{TestFederation, TestNode};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use std::io::Write;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// GET `path` over TLS with `config`; the reply text, or the I/O error.
async fn get(
    addr: std::net::SocketAddr,
    config: rustls::ClientConfig,
    path: &str,
    token: &str,
) -> std::io::Result<String> {
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let mut tls = connector.connect(ServerName::try_from("localhost").unwrap(), tcp).await?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nAccept: {TAXII_MEDIA_TYPE}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    );
    tls.write_all(request.as_bytes()).await?;
    let mut reply = Vec::new();
    tls.read_to_end(&mut reply).await?;
    Ok(String::from_utf8_lossy(&reply).to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn https_with_client_certificates_serves_only_clients_the_ca_issued() {
    let federation = TestFederation::new();
    let dir = federation.admit_node("csp-a");
    let keys = cirfed::identity::load_node(&dir).unwrap();
    let ca = keys.admission.federation.ca_cert.clone();
    std::fs::write(dir.join("clients-ca.pem"), &ca).unwrap();
    let (token, hash) = new_token();
    let section = format!(
        "\n[taxii]\ntls = true\nclient_ca = \"clients-ca.pem\"\n\n[[taxii.users]]\nname = \"siem\"\ntoken_sha256 = \"{hash}\"\nread = [\"*\"]\n"
    );
    std::fs::OpenOptions::new()
        .append(true)
        .open(dir.join("node.toml"))
        .unwrap()
        .write_all(section.as_bytes())
        .unwrap();
    let node = TestNode::start_with_http(&dir).await;
    let addr = node.running.http_addr.unwrap();

    // A member's certificate from the CA (here the node's own), HTTP/1.1 without ALPN.
    let mut with_cert = pki::client_config(&ca, &keys.admission.certificate, &keys.tls_key).unwrap();
    with_cert.alpn_protocols.clear();
    let reply = get(addr, with_cert, "/taxii2/", &token).await.expect("served");
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.contains("https://localhost/cirfed/"), "discovery gives https URLs: {reply}");

    // The same CA trusted, but no client certificate: refused in the handshake.
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(ca.as_bytes()).unwrap()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let without_cert = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    match get(addr, without_cert, "/taxii2/", &token).await {
        Ok(reply) => assert!(!reply.starts_with("HTTP/1.1 200"), "served without a certificate: {reply}"),
        Err(error) => assert!(!error.to_string().is_empty()),
    }
    node.stop().await;
}
