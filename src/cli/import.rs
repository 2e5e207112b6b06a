//! `cirfed import misp-feed DIR`: a MISP feed directory (manifest.json and
//! one `<uuid>.json` per event, as MISP and PyMISP write feeds) published
//! through the node's Publish API, incrementally.
//!
//! Every changed event is read whole before anything is published, so an
//! event whose file is missing or broken publishes nothing; the others are
//! imported and the run ends non-zero naming it. The state file records an
//! event only once all its records were acknowledged, so a run cut short
//! (or an event that failed) is read again by the next run.

use super::client::{connect, status_error};
use super::errors::Reported;
use super::output::print_json;
use crate::ApiTarget;
use anyhow::Context;
use cirfed::api::MAX_API_MESSAGE_BYTES;
use cirfed::interop::misp::feed::import::{self as feed_import, EventImport, ImportState};
use cirfed::interop::misp::feed::MANIFEST;
use cirfed::node::{unix_now, MAX_BATCH_RECORDS};
use cirfed::proto::{draft, Draft, Outcome, PublishRequest, Sighting};
use clap::{Args, Subcommand};
use prost::Message;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tonic::transport::Channel;

/// Bytes of drafts sent in one Publish request: half the API's message
/// limit, leaving room for the framing and the reply.
pub const PUBLISH_BATCH_BYTES: usize = MAX_API_MESSAGE_BYTES / 2;
/// State file in the feed directory, when no node directory is given.
pub const STATE_IN_FEED: &str = ".cirfed-import-state.json";
/// Lines of refusals and skips listed per event in the human report.
const MAX_LINES_SHOWN: usize = 20;

/// What `cirfed import` reads besides a file of envelopes.
#[derive(Subcommand)]
pub enum ImportWhat {
    /// A MISP feed directory (manifest.json, <uuid>.json), incrementally.
    ///
    /// Only events whose manifest.json timestamp changed since the last
    /// import are read, and of those only attributes newer than that import,
    /// or with newer sightings. Attributes marked to_ids become indicators
    /// (composite types split), their TLP the most restrictive of the event's
    /// and the attribute's tags; MISP sightings become sightings.
    MispFeed(MispFeedArgs),
}

/// `cirfed import misp-feed`
#[derive(Args)]
pub struct MispFeedArgs {
    /// The feed directory (manifest.json, <uuid>.json).
    pub dir: PathBuf,
    /// Where the import remembers each event's timestamp. Default: with
    /// --node, NODE_DIR/imports/misp-feed-<SHA-256 of the directory's
    /// canonical path>.json; otherwise DIR/.cirfed-import-state.json (then
    /// importing one directory into two nodes needs a --state for each).
    #[arg(long)]
    pub state: Option<PathBuf>,
}

/// Runs `cirfed import misp-feed`.
pub async fn misp_feed(args: MispFeedArgs, target: &ApiTarget, json: bool) -> anyhow::Result<ExitCode> {
    let dir =
        args.dir.canonicalize().with_context(|| format!("cannot open the feed directory {}", args.dir.display()))?;
    let state_path = state_path(args.state.as_deref(), target.node.as_deref(), &dir);
    let manifest_path = dir.join(MANIFEST);
    let text =
        std::fs::read_to_string(&manifest_path).with_context(|| format!("cannot read {}", manifest_path.display()))?;
    let manifest = feed_import::read_manifest(&text).with_context(|| format!("invalid {}", manifest_path.display()))?;
    let mut state = load_state(&state_path, &dir)?;
    let changed = feed_import::changed_events(&manifest, &state);
    let mut report = Report {
        feed: dir.clone(),
        state: state_path.clone(),
        in_manifest: manifest.len(),
        unchanged: manifest.len() - changed.len(),
        ..Report::default()
    };
    let now = unix_now();
    let mut events = Vec::new();
    for uuid in changed {
        let file = format!("{uuid}.json");
        let path = dir.join(&file);
        let previous = state.events.get(&uuid.to_string());
        let read = match std::fs::read_to_string(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(format!("{MANIFEST} names {file}, which is not in {}", dir.display()))
            }
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
            Ok(text) => feed_import::read_event(&text, uuid, manifest[&uuid], previous, now).map_err(|e| e.to_string()),
        };
        match read {
            Ok(event) => events.push(event),
            Err(reason) => report.failed.push((uuid.to_string(), reason)),
        }
    }
    if !events.is_empty() {
        let mut client = connect(target).await?;
        for group in groups(&events) {
            let group = &events[group];
            if let Err(error) = publish_group(&mut client, group, &mut report).await {
                let first = group[0].uuid;
                let error = error.context(format!(
                    "importing stopped at event {first}: the events before it are recorded in {}; run again to \
                     continue (records already stored are duplicates within one publish.time_granularity_secs)",
                    state_path.display()
                ));
                report.print(json);
                return Err(if json { Reported(error).into() } else { error });
            }
            for event in group {
                state.events.insert(event.uuid.to_string(), event.state);
            }
            save_state(&state_path, &state)?;
        }
    }
    report.print(json);
    let clean = report.failed.is_empty() && report.events.iter().all(|e| e.refused.is_empty());
    Ok(if clean { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// `--state`, else the node directory's imports, else the feed directory.
fn state_path(state: Option<&Path>, node: Option<&Path>, dir: &Path) -> PathBuf {
    match (state, node) {
        (Some(path), _) => path.to_path_buf(),
        (None, Some(node)) => {
            let digest = hex::encode(Sha256::digest(dir.to_string_lossy().as_bytes()));
            node.join("imports").join(format!("misp-feed-{digest}.json"))
        }
        (None, None) => dir.join(STATE_IN_FEED),
    }
}

fn load_state(path: &Path, dir: &Path) -> anyhow::Result<ImportState> {
    let feed = dir.to_string_lossy().to_string();
    let text = match std::fs::read_to_string(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ImportState { feed, ..Default::default() }),
        other => other.with_context(|| format!("cannot read the import state {}", path.display()))?,
    };
    let state: ImportState =
        serde_json::from_str(&text).with_context(|| format!("invalid import state {}", path.display()))?;
    anyhow::ensure!(
        state.feed == feed,
        "the import state {} records the feed {}, not {feed}: give another --state (or remove it to import \
         everything again)",
        path.display(),
        state.feed
    );
    Ok(state)
}

/// Writes the state whole or not at all (a temporary file renamed into place).
fn save_state(path: &Path, state: &ImportState) -> anyhow::Result<()> {
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    let mut file =
        tempfile::NamedTempFile::new_in(parent).with_context(|| format!("cannot write in {}", parent.display()))?;
    serde_json::to_writer_pretty(&mut file, state).context("cannot write the import state")?;
    file.persist(path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Events in runs that fit one batch (an event larger than a batch is a
/// run of its own, sent in several).
fn groups(events: &[EventImport]) -> Vec<std::ops::Range<usize>> {
    let mut groups = Vec::new();
    let (mut start, mut count, mut bytes) = (0, 0, 0);
    for (n, event) in events.iter().enumerate() {
        let (c, b) = event
            .lines
            .iter()
            .filter_map(|l| l.draft.as_ref().ok())
            .fold((0, 0), |(c, b), d| (c + 1, b + d.encoded_len()));
        if n > start && (count + c > MAX_BATCH_RECORDS || bytes + b > PUBLISH_BATCH_BYTES) {
            groups.push(start..n);
            (start, count, bytes) = (n, 0, 0);
        }
        count += c;
        bytes += b;
    }
    if start < events.len() {
        groups.push(start..events.len());
    }
    groups
}

/// Publishes drafts in batches within both limits; one outcome per draft.
async fn publish_all(
    client: &mut cirfed::proto::node_client::NodeClient<Channel>,
    drafts: Vec<Draft>,
) -> anyhow::Result<Vec<Outcome>> {
    let mut outcomes = Vec::with_capacity(drafts.len());
    let mut batch: Vec<Draft> = Vec::new();
    let mut bytes = 0;
    let mut pending = drafts.into_iter().peekable();
    while let Some(draft) = pending.next() {
        bytes += draft.encoded_len();
        batch.push(draft);
        let full = batch.len() == MAX_BATCH_RECORDS
            || pending.peek().is_none_or(|next| bytes + next.encoded_len() > PUBLISH_BATCH_BYTES);
        if full {
            let request = PublishRequest { drafts: std::mem::take(&mut batch), dry_run: false };
            let reply = client.publish(request).await.map_err(status_error)?.into_inner();
            outcomes.extend(reply.outcomes);
            bytes = 0;
        }
    }
    Ok(outcomes)
}

/// Publishes a run of events: their indicators, then the sightings of those stored.
async fn publish_group(
    client: &mut cirfed::proto::node_client::NodeClient<Channel>,
    events: &[EventImport],
    report: &mut Report,
) -> anyhow::Result<()> {
    let mut drafts = Vec::new();
    for event in events {
        drafts.extend(event.lines.iter().filter_map(|l| l.draft.as_ref().ok()).cloned());
    }
    let mut outcomes = publish_all(client, drafts).await?.into_iter();
    let mut sightings = Vec::new();
    let mut reports = Vec::new();
    for event in events {
        let mut line_report =
            EventReport { uuid: event.uuid.to_string(), unchanged: event.unchanged, ..Default::default() };
        for (index, line) in event.lines.iter().enumerate() {
            let source = format!("attribute {} ({})", line.line, line.source);
            match &line.draft {
                Err(e) if e.is_skip() => line_report.skipped.push((source, e.to_string())),
                Err(e) => line_report.refused.push((source, "invalid_attribute".into(), e.to_string())),
                Ok(_) => {
                    let outcome = outcomes.next().context("the node returned fewer outcomes than drafts")?;
                    if !outcome.error.is_empty() {
                        line_report.refused.push((source, outcome.error_code, outcome.error));
                        continue;
                    }
                    match outcome.created {
                        true => line_report.created += 1,
                        false => line_report.duplicates += 1,
                    }
                    for (kind, count) in event.sightings.get(&index).into_iter().flatten() {
                        let sighting =
                            Sighting { indicator_id: outcome.id.clone(), r#type: kind.code(), count: *count };
                        // TLP 0: the node gives a sighting its indicator's marking.
                        sightings.push((reports.len(), Draft { tlp: 0, body: Some(draft::Body::Sighting(sighting)) }));
                    }
                }
            }
        }
        reports.push(line_report);
    }
    let (owners, drafts): (Vec<usize>, Vec<Draft>) = sightings.into_iter().unzip();
    for (owner, outcome) in owners.into_iter().zip(publish_all(client, drafts).await?) {
        match outcome.error.is_empty() {
            true => reports[owner].sightings += 1,
            false => reports[owner].refused.push(("a sighting".into(), outcome.error_code, outcome.error)),
        }
    }
    report.events.extend(reports);
    Ok(())
}

/// What an import did, event by event.
#[derive(Default)]
struct Report {
    feed: PathBuf,
    state: PathBuf,
    in_manifest: usize,
    unchanged: usize,
    events: Vec<EventReport>,
    /// Events not imported: uuid and why.
    failed: Vec<(String, String)>,
}

#[derive(Default)]
struct EventReport {
    uuid: String,
    created: usize,
    duplicates: usize,
    sightings: usize,
    unchanged: usize,
    skipped: Vec<(String, String)>,
    refused: Vec<(String, String, String)>,
}

impl Report {
    fn print(&self, json: bool) {
        match json {
            true => print_json(&self.json()),
            false => self.print_human(),
        }
    }

    fn json(&self) -> Value {
        let events: Vec<Value> = self
            .events
            .iter()
            .map(|e| {
                json!({
                    "uuid": e.uuid, "created": e.created, "duplicates": e.duplicates, "sightings": e.sightings,
                    "unchanged_attributes": e.unchanged,
                    "skipped": e.skipped.iter().map(|(s, r)| json!({ "source": s, "reason": r })).collect::<Vec<_>>(),
                    "refused": e.refused.iter().map(|(s, c, r)| json!({ "source": s, "error_code": c, "error": r })).collect::<Vec<_>>(),
                })
            })
            .collect();
        let failed: Vec<Value> = self.failed.iter().map(|(u, r)| json!({ "uuid": u, "error": r })).collect();
        json!({
            "feed": self.feed.display().to_string(), "state": self.state.display().to_string(),
            "events_in_manifest": self.in_manifest, "events_unchanged": self.unchanged,
            "events_read": self.events.len(), "events": events, "failed": failed,
        })
    }

    fn print_human(&self) {
        println!(
            "misp feed {}: {} event(s) in {MANIFEST}, {} unchanged since the last import, {} read",
            self.feed.display(),
            self.in_manifest,
            self.unchanged,
            self.events.len()
        );
        for e in &self.events {
            println!(
                "  event {}: {} indicator(s) published ({} new, {} already stored), {} sighting(s), {} skipped, \
                 {} refused, {} attribute(s) unchanged",
                e.uuid,
                e.created + e.duplicates,
                e.created,
                e.duplicates,
                e.sightings,
                e.skipped.len(),
                e.refused.len(),
                e.unchanged
            );
            for (source, code, reason) in e.refused.iter().take(MAX_LINES_SHOWN) {
                println!("    {source}: refused: {code}: {reason}");
            }
            for (source, reason) in e.skipped.iter().take(MAX_LINES_SHOWN) {
                println!("    {source}: skipped: {reason}");
            }
        }
        for (uuid, reason) in &self.failed {
            println!("  event {uuid}: not imported (nothing of it was published): {reason}");
        }
        if !self.failed.is_empty() {
            println!("events not imported are read again by the next run");
        }
        println!("state: {}", self.state.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_lives_where_asked_else_with_the_node_else_in_the_feed() {
        let dir = Path::new("/feeds/circl");
        assert_eq!(state_path(Some(Path::new("s.json")), Some(Path::new("/node")), dir), PathBuf::from("s.json"));
        let with_node = state_path(None, Some(Path::new("/node")), dir);
        let digest = hex::encode(Sha256::digest(b"/feeds/circl"));
        assert_eq!(with_node, PathBuf::from(format!("/node/imports/misp-feed-{digest}.json")));
        assert_eq!(state_path(None, None, dir), PathBuf::from("/feeds/circl/.cirfed-import-state.json"));
    }

    #[test]
    fn a_state_file_of_another_feed_is_refused() {
        let temp = tempfile::tempdir().unwrap();
        let path = temp.path().join("state.json");
        let state = ImportState { feed: "/elsewhere".into(), ..Default::default() };
        save_state(&path, &state).unwrap();
        let error = load_state(&path, Path::new("/feeds/circl")).unwrap_err().to_string();
        assert!(error.contains("records the feed /elsewhere"), "{error}");
        assert_eq!(load_state(&path, Path::new("/elsewhere")).unwrap(), state);
    }
}
