//! The TAXII 2.1 server of a real node: driven by OASIS taxii2-client, and by
//! raw HTTP for every refusal a client can meet.

mod common;

use base64::Engine as _;
use cirfed::cir::Tlp;
use cirfed::http::auth::new_token;
use cirfed::interop::taxii::{Collection, TAXII_MEDIA_TYPE};
use cirfed::proto::Draft;
use common::http::{read_reply, request, Reply};
use common::{indicator, python, retraction, TestFederation, TestNode};
use std::io::Write;
use std::net::TcpStream;
use std::path::Path;

/// Tokens of the test's users.
struct Tokens {
    analyst: String,
    reader: String,
}

/// Adds `[taxii]` users to a node's config: an analyst who reads and writes
/// the analysts collection, a reader of the community collection only.
fn configure(dir: &Path, extra: &str) -> Tokens {
    let (analyst, analyst_hash) = new_token();
    let (reader, reader_hash) = new_token();
    let section = format!(
        r#"
[taxii]
{extra}

[[taxii.users]]
name = "analyst"
token_sha256 = "{analyst_hash}"
read = ["analysts", "misp-feed", "blocklist"]
write = ["analysts"]

[[taxii.users]]
name = "reader"
token_sha256 = "{reader_hash}"
read = ["community"]
"#
    );
    let mut file = std::fs::OpenOptions::new().append(true).open(dir.join("node.toml")).unwrap();
    file.write_all(section.as_bytes()).unwrap();
    Tokens { analyst, reader }
}

fn addr(node: &TestNode) -> String {
    node.running.http_addr.expect("http listener on").to_string()
}

fn get(node: &TestNode, token: &str, path: &str) -> Reply {
    let auth = format!("Bearer {token}");
    request(&addr(node), "GET", path, &[("Accept", TAXII_MEDIA_TYPE), ("Authorization", &auth)], b"")
}

fn objects_path(alias: &str) -> String {
    format!("/cirfed/collections/{}/objects/", Collection::find(alias).unwrap().id())
}

fn with_tlp(mut draft: Draft, tlp: Tlp) -> Draft {
    draft.tlp = tlp.code();
    draft
}

async fn publish_indicators(node: &mut TestNode, count: usize) -> Vec<Vec<u8>> {
    let mut ids = Vec::new();
    for start in (0..count).step_by(1000) {
        let drafts = (start..count.min(start + 1000))
            .map(|n| {
                let tlp = if n % 2 == 0 { Tlp::Green } else { Tlp::Amber };
                with_tlp(indicator(&format!("host-{n}.bad.example"), 3), tlp)
            })
            .collect();
        for outcome in node.publish(drafts).await {
            assert!(outcome.error.is_empty(), "{}", outcome.error);
            ids.push(outcome.id);
        }
    }
    ids
}

#[tokio::test(flavor = "multi_thread")]
async fn taxii2_client_pages_filters_and_adds_objects_against_a_real_node() {
    let federation = TestFederation::new();
    let dir = federation.admit_node("csp-a");
    let tokens = configure(&dir, "");
    let mut node = TestNode::start_with_http(&dir).await;
    let ids = publish_indicators(&mut node, 2_600).await;
    node.publish_ok(retraction(&ids[0], "false positive")).await;
    node.publish_ok(with_tlp(indicator("red-only.example", 4), Tlp::Red)).await;

    let envelope = serde_json::json!({ "objects": [{
        "type": "indicator", "spec_version": "2.1",
        "id": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
        "created": "2026-11-01T10:00:00.000Z", "modified": "2026-11-01T10:00:00.000Z",
        "name": "posted", "description": "posted over TAXII",
        "pattern": "[domain-name:value = 'posted.bad.example']", "pattern_type": "stix",
        "valid_from": "2026-11-01T10:00:00Z",
        "object_marking_refs": ["marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"]
    }]});
    let envelope_file = dir.join("post.json");
    std::fs::write(&envelope_file, envelope.to_string()).unwrap();
    let url = node.http_url();
    let out =
        python::run_script("taxii_check.py", &[&url, "analyst", &tokens.analyst, envelope_file.to_str().unwrap()]);
    assert!(out.status.success(), "taxii2-client failed: {}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();

    assert_eq!(report["collections"]["analysts"]["can_write"], true);
    assert_eq!(report["collections"].as_object().unwrap().len(), 1, "only the collections the user may see");
    let paged = &report["paged"];
    assert_eq!(paged["objects"], paged["distinct"], "no object twice: {paged}");
    // 2,599 live indicators and the revoked version of the retracted one; RED never.
    let objects = paged["objects"].as_u64().unwrap();
    assert!(objects >= 2_600, "{paged}");
    assert!(paged["pages"].as_u64().unwrap() >= 6, "{paged}");
    assert!(report["added_after"]["later"].as_u64().unwrap() > 0);
    assert!(report["added_after"]["later"].as_u64().unwrap() < objects);
    assert_eq!(report["match_type"], serde_json::json!(["indicator"]));
    assert_eq!(report["manifest"][0], serde_json::json!(["date_added", "id", "media_type", "version"]));
    assert_eq!(report["versions"].as_array().unwrap().len(), 1);
    assert_eq!(report["status"]["status"], "complete");
    assert_eq!(report["status"]["success"], 1, "{}", report["status"]);
    common::wait_for("the posted indicator to match", || {
        let mut client = node.client.clone();
        async move {
            let request =
                cirfed::proto::LookupRequest { values: vec!["posted.bad.example".into()], ..Default::default() };
            !client.lookup(request).await.unwrap().into_inner().results.is_empty()
        }
    })
    .await;
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_community_collection_holds_only_clear_and_green() {
    let federation = TestFederation::new();
    let dir = federation.admit_node("csp-a");
    let tokens = configure(&dir, "");
    let mut node = TestNode::start_with_http(&dir).await;
    publish_indicators(&mut node, 10).await;
    let reply = get(&node, &tokens.reader, &objects_path("community"));
    assert_eq!(reply.status, 200, "{}", reply.body);
    let markings: Vec<String> = reply.json()["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["type"] == "indicator")
        .flat_map(|o| o["object_marking_refs"].as_array().cloned().unwrap_or_default())
        .map(|m| m.as_str().unwrap().to_string())
        .collect();
    assert_eq!(markings.len(), 5);
    assert!(markings.iter().all(|m| m == "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"), "{markings:?}");
    // The reader may not see the analysts collection at all.
    assert_eq!(get(&node, &tokens.reader, &objects_path("analysts")).status, 403);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn paging_by_next_never_repeats_or_loses_an_object_and_caps_the_limit() {
    let federation = TestFederation::new();
    let dir = federation.admit_node("csp-a");
    let tokens = configure(&dir, "max_page_size = 100");
    let mut node = TestNode::start_with_http(&dir).await;
    publish_indicators(&mut node, 450).await;
    let (mut seen, mut next, mut pages) = (Vec::new(), None::<String>, 0);
    loop {
        let path = match &next {
            Some(next) => format!("{}?limit=5000&next={next}", objects_path("analysts")),
            None => format!("{}?limit=5000", objects_path("analysts")),
        };
        let reply = get(&node, &tokens.analyst, &path);
        assert_eq!(reply.status, 200, "{}", reply.body);
        let envelope = reply.json();
        let objects = envelope["objects"].as_array().cloned().unwrap_or_default();
        assert!(objects.len() <= 100, "the page size cap holds: {}", objects.len());
        assert!(
            reply.header("x-taxii-date-added-first").is_some() && reply.header("x-taxii-date-added-last").is_some()
        );
        seen.extend(objects.iter().map(|o| o["id"].as_str().unwrap().to_string()));
        pages += 1;
        match envelope["more"].as_bool().unwrap() {
            true => next = Some(envelope["next"].as_str().expect("next whenever more").to_string()),
            false => break,
        }
    }
    let distinct: std::collections::BTreeSet<_> = seen.iter().collect();
    assert_eq!(distinct.len(), seen.len());
    assert_eq!(seen.iter().filter(|id| id.starts_with("indicator--")).count(), 450);
    assert!(pages >= 5);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_refusal_has_its_status_and_a_taxii_error_body() {
    let federation = TestFederation::new();
    let dir = federation.admit_node("csp-a");
    let tokens = configure(&dir, "max_content_length = 4096");
    let mut node = TestNode::start_with_http(&dir).await;
    publish_indicators(&mut node, 30).await;
    let http = addr(&node);
    let analyst = format!("Bearer {}", tokens.analyst);
    let reader = format!("Bearer {}", tokens.reader);
    let objects = objects_path("analysts");
    let taxii = ("Accept", TAXII_MEDIA_TYPE);

    let no_auth = request(&http, "GET", &objects, &[taxii], b"");
    assert_eq!(no_auth.status, 401);
    assert!(no_auth.header("www-authenticate").is_some());
    let wrong = request(&http, "GET", &objects, &[taxii, ("Authorization", "Bearer nope")], b"");
    assert_eq!(wrong.status, 401);
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("analyst:{}", tokens.analyst));
    let basic = format!("Basic {basic}");
    assert_eq!(request(&http, "GET", &objects, &[taxii, ("Authorization", &basic)], b"").status, 200);

    let missing_accept = request(&http, "GET", &objects, &[("Authorization", &analyst)], b"");
    assert_eq!(missing_accept.status, 406);
    assert_eq!(missing_accept.header("content-type"), Some(TAXII_MEDIA_TYPE));
    assert!(missing_accept.json()["description"].as_str().unwrap().contains("Accept"));

    let unknown =
        request(&http, "GET", "/cirfed/collections/nope/objects/", &[taxii, ("Authorization", &analyst)], b"");
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.json()["http_status"], "404");

    let body = br#"{"objects":[]}"#;
    let json_type = ("Content-Type", "application/json");
    assert_eq!(request(&http, "POST", &objects, &[taxii, json_type, ("Authorization", &analyst)], body).status, 415);
    let taxii_type = ("Content-Type", TAXII_MEDIA_TYPE);
    let read_only = request(&http, "POST", &objects, &[taxii, taxii_type, ("Authorization", &reader)], body);
    assert_eq!(read_only.status, 403);
    let malformed =
        request(&http, "POST", &objects, &[taxii, taxii_type, ("Authorization", &analyst)], b"{\"objects\": [");
    assert_eq!(malformed.status, 400);
    let big = vec![b' '; 5000];
    let too_large = request(&http, "POST", &objects, &[taxii, taxii_type, ("Authorization", &analyst)], &big);
    assert_eq!(too_large.status, 413);
    assert!(too_large.json()["description"].as_str().unwrap().contains("max_content_length"));

    let first = get(&node, &tokens.analyst, &format!("{objects}?limit=5&match[type]=indicator"));
    let next = first.json()["next"].as_str().unwrap().to_string();
    let mut tampered = next.clone().into_bytes();
    tampered[0] = if tampered[0] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let reply = get(&node, &tokens.analyst, &format!("{objects}?limit=5&match[type]=indicator&next={tampered}"));
    assert_eq!(reply.status, 400);
    assert!(reply.json()["description"].as_str().unwrap().contains("cursor"));
    // The right cursor with other match filters is refused: pages would be wrong.
    let other = get(&node, &tokens.analyst, &format!("{objects}?limit=5&match[type]=sighting&next={next}"));
    assert_eq!(other.status, 400);
    assert!(other.json()["description"].as_str().unwrap().contains("match"));
    let resumed = get(&node, &tokens.analyst, &format!("{objects}?limit=5&match[type]=indicator&next={next}"));
    assert_eq!(resumed.status, 200);
    // A client that drops the filters on later pages still gets the filtered
    // listing (Elastic), and one that re-sends an older added_after with the
    // cursor gets the cursor's pages (OpenCTI).
    let bare = get(&node, &tokens.analyst, &format!("{objects}?limit=5&next={next}"));
    assert_eq!(bare.body, resumed.body);
    let old = get(&node, &tokens.analyst, &format!("{objects}?limit=5&added_after=2020-01-01T00:00:00Z&next={next}"));
    assert_eq!(old.body, resumed.body);
    assert!(bare.json()["objects"].as_array().unwrap().iter().all(|o| o["type"] == "indicator"));
    // A cursor of one collection does not open another.
    let elsewhere = get(&node, &tokens.analyst, &format!("{}?next={next}", objects_path("community")));
    assert!(matches!(elsewhere.status, 400 | 403), "{}", elsewhere.status);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_slower_than_the_timeout_answers_408() {
    let federation = TestFederation::new();
    let dir = federation.admit_node("csp-a");
    let tokens = configure(&dir, "request_timeout_secs = 1");
    let node = TestNode::start_with_http(&dir).await;
    // A POST that promises a body and sends only part of it.
    let mut stream = TcpStream::connect(addr(&node)).unwrap();
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAccept: {TAXII_MEDIA_TYPE}\r\nContent-Type: {TAXII_MEDIA_TYPE}\r\nAuthorization: Bearer {}\r\nContent-Length: 1000\r\n\r\n{{\"objects\"",
        objects_path("analysts"),
        tokens.analyst
    );
    stream.write_all(head.as_bytes()).unwrap();
    let reply = read_reply(&mut stream);
    assert_eq!(reply.status, 408);
    node.stop().await;
}
