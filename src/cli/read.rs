//! Read commands: show, list, status (lookup has its own module).

use super::client::{connect, status_error};
use super::output::{self, print_json};
use crate::ApiTarget;
use cirfed::node::{MAX_LIST_LIMIT, MAX_LIST_PAGE_BYTES};
use cirfed::proto;
use cirfed::record::{RecordId, RecordKind};
use clap::Args;
use serde_json::json;
use std::process::ExitCode;

/// `cirfed show`
#[derive(Args)]
pub struct ShowArgs {
    /// Record id (64 hex characters).
    pub id: RecordId,
    #[command(flatten)]
    pub target: ApiTarget,
}

/// `cirfed list`
#[derive(Args)]
pub struct ListArgs {
    /// Kind of record: indicator, lesson, sighting, retraction, member-card, member-revocation.
    #[arg(long)]
    pub kind: Option<RecordKind>,
    /// Records per page.
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    /// Start after this sequence number (the `next` of the previous page).
    #[arg(long, default_value_t = 0)]
    pub after: u64,
    /// Include retracted and expired records.
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub target: ApiTarget,
}

/// `cirfed status`
#[derive(Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub target: ApiTarget,
}

pub async fn show(args: ShowArgs, json: bool) -> anyhow::Result<ExitCode> {
    let mut client = connect(&args.target).await?;
    let stored = client.get(proto::GetRequest { id: args.id.0.to_vec() }).await.map_err(status_error)?.into_inner();
    if json {
        print_json(&output::record_json(&stored));
    } else {
        println!("{}", output::record_table(&stored));
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn list(args: ListArgs, json: bool) -> anyhow::Result<ExitCode> {
    let mut client = connect(&args.target).await?;
    let request = proto::ListRequest {
        kind: args.kind.map_or(0, |k| i32::from(k.code())),
        after: args.after,
        limit: args.limit,
        include_inactive: args.all,
    };
    let reply = client.list(request).await.map_err(status_error)?.into_inner();
    note_short_page(args.limit, &reply);
    if json {
        print_json(
            &json!({ "records": reply.records.iter().map(output::record_json).collect::<Vec<_>>(), "next": reply.next }),
        );
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = output::table(&["seq", "id", "kind", "tlp", "created", "summary", "state"]);
    for stored in &reply.records {
        let record = output::decode(stored);
        table.add_row(vec![
            stored.seq.to_string(),
            output::short_id(&stored.id),
            record.as_ref().and_then(|r| r.body.as_ref()).map_or("-".into(), |b| RecordKind::of(b).to_string()),
            record.as_ref().map_or("-".into(), |r| output::tlp(r.tlp)),
            record.as_ref().map_or("-".into(), |r| output::time(r.created_at)),
            record.as_ref().map_or("-".into(), output::summary),
            output::state(stored).to_string(),
        ]);
    }
    println!("{table}");
    if reply.next != 0 {
        println!("more: cirfed list --after {}", reply.next);
    }
    Ok(ExitCode::SUCCESS)
}

/// Says on stderr when the node sent fewer records than asked although more
/// follow: its page is capped in records and bytes, whatever --limit says.
fn note_short_page(limit: u32, reply: &proto::ListReply) {
    if reply.next == 0 || reply.records.len() >= limit as usize {
        return;
    }
    eprintln!(
        "note: {} of the {limit} records asked for: the node sends at most {MAX_LIST_LIMIT} records ({} MiB) \
         per page; the next page: cirfed list --after {}",
        reply.records.len(),
        MAX_LIST_PAGE_BYTES >> 20,
        reply.next
    );
}

pub async fn status(args: StatusArgs, json: bool) -> anyhow::Result<ExitCode> {
    let mut client = connect(&args.target).await?;
    let status = client.status(proto::StatusRequest {}).await.map_err(status_error)?.into_inner();
    let kinds: Vec<(String, u64)> = status.kinds.iter().map(|k| (output::kind(k.kind), k.count)).collect();
    if json {
        let counts: serde_json::Map<String, serde_json::Value> =
            kinds.iter().map(|(k, n)| (k.clone(), json!(n))).collect();
        print_json(&json!({
            "version": status.version, "member_id": status.member_id, "signing_key": status.signing_key,
            "started_at": output::time(status.started_at), "records": status.records, "kinds": counts,
            "active_indicators": status.active_indicators, "last_seq": status.last_seq, "data_dir": status.data_dir,
            "peers": status.peers.iter().map(peer_json).collect::<Vec<_>>(),
            "trust": trust_json(&status.trust.clone().unwrap_or_default()),
        }));
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = output::table(&["", ""]);
    table.add_row(vec!["member".to_string(), status.member_id]);
    table.add_row(vec!["signing key".to_string(), status.signing_key]);
    table.add_row(vec!["version".to_string(), status.version]);
    table.add_row(vec!["started".to_string(), output::time(status.started_at)]);
    table.add_row(vec!["data dir".to_string(), status.data_dir]);
    table.add_row(vec!["records".to_string(), status.records.to_string()]);
    for (kind, count) in kinds {
        table.add_row(vec![format!("  {kind}"), count.to_string()]);
    }
    table.add_row(vec!["active indicators".to_string(), status.active_indicators.to_string()]);
    let trust = status.trust.clone().unwrap_or_default();
    let crl = match trust.crl_number {
        0 => "none installed".to_string(),
        number => format!(
            "{number} from {}, {} revoked, next update {}",
            trust.crl_source,
            trust.crl_revoked,
            output::time(trust.crl_next_update)
        ),
    };
    table.add_row(vec!["operator crl".to_string(), crl]);
    if !trust.crl_refused.is_empty() {
        table.add_row(vec!["  last refused".to_string(), trust.crl_refused.clone()]);
    }
    table.add_row(vec!["certificate until".to_string(), output::time(trust.certificate_not_after)]);
    table.add_row(vec!["member card until".to_string(), output::time(trust.card_valid_until)]);
    println!("{table}");
    for warning in &trust.warnings {
        eprintln!("warning: {warning}");
    }
    if !status.peers.is_empty() {
        println!("{}", peer_table(&status.peers));
    }
    Ok(ExitCode::SUCCESS)
}

fn peer_json(peer: &proto::PeerStatus) -> serde_json::Value {
    json!({
        "addr": peer.addr, "dialed": peer.dialed, "member_id": peer.member_id, "connected": peer.connected,
        "since": output::time(peer.since),
        "records_sent": peer.records_sent, "records_received": peer.records_received,
        "last_reconciled": output::time(peer.last_reconciled), "last_difference": peer.last_difference,
        "last_error": peer.last_error,
        "revoked_at": (peer.revoked_at > 0).then(|| output::time(peer.revoked_at)),
    })
}

fn trust_json(trust: &proto::TrustStatus) -> serde_json::Value {
    json!({
        "crl_number": trust.crl_number, "crl_this_update": output::time(trust.crl_this_update),
        "crl_next_update": output::time(trust.crl_next_update), "crl_revoked": trust.crl_revoked,
        "crl_source": trust.crl_source, "crl_refused": trust.crl_refused,
        "certificate_not_after": output::time(trust.certificate_not_after),
        "card_valid_until": output::time(trust.card_valid_until), "warnings": trust.warnings,
    })
}

fn peer_table(peers: &[proto::PeerStatus]) -> comfy_table::Table {
    let mut table =
        output::table(&["peer", "dials", "member", "state", "since", "sent", "received", "reconciled", "behind"]);
    for peer in peers {
        let state = match (peer.revoked_at, peer.connected) {
            (at, _) if at > 0 => format!("revoked at {}", output::time(at)),
            (_, true) => "connected".to_string(),
            (_, false) => format!("down: {}", peer.last_error),
        };
        let behind = if peer.dialed { peer.last_difference.to_string() } else { "-".to_string() };
        table.add_row(vec![
            peer.addr.clone(),
            if peer.dialed { "out" } else { "in" }.to_string(),
            peer.member_id.clone(),
            state,
            output::time(peer.since),
            peer.records_sent.to_string(),
            peer.records_received.to_string(),
            output::time(peer.last_reconciled),
            behind,
        ]);
    }
    table
}
