//! Read commands: lookup, show, list, status.

use super::client::{connect, status_error};
use super::output::{self, print_json};
use crate::ApiTarget;
use anyhow::Context;
use cirfed::normalize::ObservableType;
use cirfed::proto::{self, LookupRequest};
use cirfed::record::{RecordId, RecordKind};
use clap::Args;
use serde_json::json;
use std::io::BufRead;
use std::process::ExitCode;

/// Values sent per LookupStream batch when reading standard input.
pub const STDIN_BATCH: usize = 10_000;

/// `cirfed lookup`
#[derive(Args)]
pub struct LookupArgs {
    /// Observables to look up (IPs, domains, URLs, hashes, ...).
    #[arg(required_unless_present = "stdin")]
    pub values: Vec<String>,
    /// Read observables from standard input, one per line (bulk, streamed).
    #[arg(long, conflicts_with = "values")]
    pub stdin: bool,
    /// Treat every value as this type instead of detecting it.
    #[arg(long = "type")]
    pub kind: Option<ObservableType>,
    /// With --stdin, print only values that matched or were invalid.
    #[arg(long)]
    pub hits_only: bool,
    #[command(flatten)]
    pub target: ApiTarget,
}

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

fn type_code(kind: Option<ObservableType>) -> i32 {
    kind.map_or(0, |k| i32::from(k.code()))
}

pub async fn lookup(args: LookupArgs, json: bool) -> anyhow::Result<ExitCode> {
    let mut client = connect(&args.target).await?;
    if args.stdin {
        return lookup_stdin(client, args, json).await;
    }
    let mut request =
        LookupRequest { values: args.values.clone(), r#type: type_code(args.kind), details: true, start: 0 };
    let mut reply = proto::LookupReply::default();
    // A reply is cut at the node's size limit: ask again from where it stopped.
    loop {
        let page = client.lookup(request.clone()).await.map_err(status_error)?.into_inner();
        let next = page.next_index;
        merge(&mut reply, page);
        if next == 0 {
            break;
        }
        request.start = next;
    }
    let invalid = report_lookup(&args.values, &reply, json, false);
    Ok(if invalid > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// Streams standard input in batches; prints each batch's results as it comes.
async fn lookup_stdin(
    mut client: proto::node_client::NodeClient<tonic::transport::Channel>,
    args: LookupArgs,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let lines: Vec<String> = std::io::stdin()
        .lock()
        .lines()
        .collect::<Result<Vec<_>, _>>()
        .context("cannot read standard input")?
        .into_iter()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let batches: Vec<Vec<String>> = lines.chunks(STDIN_BATCH).map(<[String]>::to_vec).collect();
    let kind = type_code(args.kind);
    let requests =
        batches.clone().into_iter().map(move |values| LookupRequest { values, r#type: kind, details: false, start: 0 });
    let mut replies = client.lookup_stream(tokio_stream::iter(requests)).await.map_err(status_error)?.into_inner();
    let (mut invalid, mut matched) = (0, 0);
    for batch in &batches {
        let reply = batch_reply(&mut replies).await?;
        matched += reply.results.iter().filter(|r| !r.matches.is_empty()).count();
        invalid += report_lookup(batch, &reply, json, args.hits_only);
    }
    if !json {
        eprintln!("{} looked up, {matched} matched, {invalid} invalid", lines.len());
    }
    Ok(if invalid > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// One stream batch's answer: the node splits it into replies under its
/// size limit, all but the last with `next_index` set.
async fn batch_reply(replies: &mut tonic::Streaming<proto::LookupReply>) -> anyhow::Result<proto::LookupReply> {
    let mut reply = proto::LookupReply::default();
    loop {
        let page = replies.message().await.map_err(status_error)?.context("the node closed the stream early")?;
        let last = page.next_index == 0;
        merge(&mut reply, page);
        if last {
            return Ok(reply);
        }
    }
}

/// Adds a cut reply's page to the answer so far.
fn merge(reply: &mut proto::LookupReply, page: proto::LookupReply) {
    reply.results.extend(page.results);
    reply.descriptions.extend(page.descriptions);
    reply.looked_up += page.looked_up;
}

/// Prints results; returns how many values were invalid.
fn report_lookup(values: &[String], reply: &proto::LookupReply, json: bool, hits_only: bool) -> usize {
    let mut by_index: Vec<Option<&proto::LookupResult>> = vec![None; values.len()];
    for result in &reply.results {
        if let Some(slot) = by_index.get_mut(result.index as usize) {
            *slot = Some(result);
        }
    }
    let invalid = reply.results.iter().filter(|r| !r.error.is_empty()).count();
    let shown = values.iter().zip(&by_index).filter(|(_, r)| !hits_only || r.is_some());
    if json {
        for (value, result) in shown {
            println!("{}", output::lookup_json(value, *result, &reply.descriptions));
        }
    } else {
        let mut table = output::table(&output::LOOKUP_HEADER);
        for (value, result) in shown {
            output::lookup_rows(&mut table, value, *result);
        }
        println!("{table}");
    }
    invalid
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
