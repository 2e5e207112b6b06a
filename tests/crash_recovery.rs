//! A node killed mid-write reopens cleanly and keeps every acknowledged record.

mod common;

use cirfed::proto::{self, node_client::NodeClient};
use common::{indicator, serve, TestFederation, TestNode};
use std::sync::{Arc, Mutex};

/// Drafts per publish request in the writer loop.
const BATCH: usize = 200;

#[tokio::test(flavor = "multi_thread")]
async fn a_node_killed_mid_write_reopens_with_every_acknowledged_record() {
    let fed = TestFederation::new();
    let dir = fed.admit_node("a");
    let mut server = serve(&dir);
    let mut client = NodeClient::connect(format!("http://{}", server.addr)).await.unwrap();
    let acknowledged: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let writer = {
        let acknowledged = acknowledged.clone();
        tokio::spawn(async move {
            for batch in 0.. {
                let drafts = (0..BATCH).map(|n| indicator(&format!("h{n}.b{batch}.example"), 3)).collect();
                match client.publish(proto::PublishRequest { drafts, dry_run: false }).await {
                    Ok(reply) => {
                        acknowledged.lock().unwrap().extend(reply.into_inner().outcomes.into_iter().map(|o| o.id))
                    }
                    Err(_) => return,
                }
            }
        })
    };
    common::wait_for("five acknowledged batches", || {
        let done = acknowledged.lock().unwrap().len() >= 5 * BATCH;
        async move { done }
    })
    .await;
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    writer.await.unwrap();
    let acknowledged = acknowledged.lock().unwrap().clone();

    let mut node = TestNode::start(&dir).await;
    for id in &acknowledged {
        node.client.get(proto::GetRequest { id: id.clone() }).await.expect("acknowledged record survives");
    }
    let status = node.status().await;
    let indicators =
        status.kinds.iter().find(|k| k.kind == proto::RecordKind::Indicator as i32).unwrap().count as usize;
    assert!(
        indicators == acknowledged.len() || indicators == acknowledged.len() + BATCH,
        "a batch lands whole or not at all: {indicators} stored, {} acknowledged",
        acknowledged.len()
    );
    assert_eq!(status.records, status.last_seq, "sequence and records agree");
    assert_eq!(node.matches("h0.b0.example").await.len(), 1);
    node.stop().await;
}
