//! Blocklists from a real node: `cirfed export blocklist` and the HTTP
//! listener's `/blocklist/{form}` list what lookups would report now, so a
//! warninglisted or retracted value is never in them.

mod common;

use base64::Engine as _;
use cirfed::cir::Tlp;
use cirfed::http::auth::new_token;
use common::cli::cirfed;
use common::http::{request, Reply};
use common::{indicator, retraction, TestFederation, TestNode};
use std::io::Write;
use std::path::Path;

/// A warninglist of public resolvers (a node refuses to publish a value on
/// one, so it is added once the value is stored, as when a list is updated).
fn add_warninglist(dir: &Path) {
    std::fs::write(dir.join("public-resolvers.txt"), "# resolvers\n8.8.8.8\n").unwrap();
    let mut config = cirfed::config::ConfigFile::load(dir).unwrap();
    config.accept.warninglists = vec!["public-resolvers.txt".into()];
    std::fs::write(dir.join("node.toml"), config.to_toml()).unwrap();
}

/// Two HTTP users: one reads blocklists, one only a TAXII collection.
/// Returns their tokens.
fn configure(dir: &Path) -> (String, String) {
    let (reader, reader_hash) = new_token();
    let (other, other_hash) = new_token();
    let section = format!(
        "\n[taxii]\n\n[[taxii.users]]\nname = \"firewall\"\ntoken_sha256 = \"{reader_hash}\"\nread = [\"blocklist\"]\n\n\
         [[taxii.users]]\nname = \"siem\"\ntoken_sha256 = \"{other_hash}\"\nread = [\"community\"]\n"
    );
    std::fs::OpenOptions::new()
        .append(true)
        .open(dir.join("node.toml"))
        .unwrap()
        .write_all(section.as_bytes())
        .unwrap();
    (reader, other)
}

fn get(node: &TestNode, token: Option<&str>, path: &str) -> Reply {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    request(&node.running.http_addr.unwrap().to_string(), "GET", path, &headers, b"")
}

fn green(value: &str) -> cirfed::proto::Draft {
    let mut draft = indicator(value, 3);
    draft.tlp = Tlp::Green.code();
    draft
}

/// A node holding a live address and domain, a warninglisted address and a retracted one.
async fn node_with_values(fed: &TestFederation) -> (TestNode, String, String) {
    let dir = fed.admit_node("a");
    let (reader, other) = configure(&dir);
    let mut node = TestNode::start_with_http(&dir).await;
    node.publish_ok(green("198.51.100.7")).await;
    node.publish_ok(green("bad.example")).await;
    node.publish_ok(green("8.8.8.8")).await;
    let withdrawn = node.publish_ok(green("203.0.113.5")).await;
    node.publish_ok(retraction(&withdrawn, "false positive")).await;
    node.wait_for_matches("203.0.113.5", 0).await;
    node.stop().await;
    add_warninglist(&dir);
    let node = TestNode::start_with_http(&dir).await;
    node.wait_for_matches("8.8.8.8", 0).await;
    (node, reader, other)
}

#[tokio::test(flavor = "multi_thread")]
async fn cirfed_export_blocklist_lists_live_values_but_not_warninglisted_or_retracted_ones() {
    let fed = TestFederation::new();
    let (node, _, _) = node_with_values(&fed).await;
    let api = node.running.api_addr.to_string();
    let out = cirfed(&["export", "blocklist", "--format", "plain", "--api", &api]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    assert!(header.starts_with("# cirfed blocklist (plain): 2 values (1 ipv4, 1 domain)"), "{header}");
    assert_eq!(lines.collect::<Vec<_>>(), ["198.51.100.7", "bad.example"]);

    let out = cirfed(&["export", "blocklist", "--format", "edl", "--type", "domain", "--api", &api]);
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "bad.example\n");
    let out = cirfed(&["export", "blocklist", "--format", "iptables", "--api", &api]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("suricata-ipv4"), "{}", String::from_utf8_lossy(&out.stderr));
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_http_listener_serves_each_form_filtered_and_described_to_blocklist_readers_only() {
    let fed = TestFederation::new();
    let (node, reader, other) = node_with_values(&fed).await;
    let token = Some(reader.as_str());

    let reply = get(&node, token, "/blocklist/plain?type=ipv4");
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("content-type"), Some("text/plain; charset=utf-8"));
    assert!(reply.body.ends_with("\n198.51.100.7\n"), "{}", reply.body);
    let description = reply.header("x-cirfed-blocklist").unwrap();
    assert!(description.starts_with("cirfed blocklist (plain): 1 value (1 ipv4); filter: types ipv4"), "{description}");

    let reply = get(&node, token, "/blocklist/suricata-domain");
    let decoded = base64::engine::general_purpose::STANDARD.decode(reply.body.trim_end()).unwrap();
    assert_eq!(decoded, b"bad.example");
    let reply = get(&node, token, "/blocklist/csv?min_level=3&tlp=green");
    assert_eq!(reply.header("content-type"), Some("text/csv; charset=utf-8"));
    assert!(reply.body.starts_with("value,type,cir_level,score,tlp,categories,valid_until,id\n"), "{}", reply.body);
    assert_eq!(reply.body.lines().count(), 3);

    assert_eq!(get(&node, token, "/blocklist/iptables").status, 404);
    assert_eq!(get(&node, token, "/blocklist/plain?tlp=red").status, 400);
    assert_eq!(get(&node, token, "/blocklist/plain?min_levle=3").status, 400);
    assert_eq!(get(&node, None, "/blocklist/plain").status, 401);
    assert_eq!(get(&node, Some(&other), "/blocklist/plain").status, 403);
    node.stop().await;
}
