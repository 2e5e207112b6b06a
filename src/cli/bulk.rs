//! `cirfed publish --file`: a bulk file in chunks, with a per-line report a
//! script can rely on: every accepted line's record id, every refused line's
//! reason, and when the node fails mid-file, what it acknowledged before.

use super::client::{connect, status_error};
use super::errors::{self, Reported};
use super::output::{self, print_json};
use super::publish::PublishArgs;
use cirfed::interop::bulk::{self, BulkFormat};
use cirfed::node::unix_now;
use cirfed::proto::{self, Draft, PublishRequest};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};
use std::path::Path;
use std::process::ExitCode;

/// Drafts sent per Publish request in bulk mode.
pub const PUBLISH_CHUNK: usize = 1_000;
/// Lines of each kind listed in the human summary; the rest are counted.
pub const MAX_REFUSALS_SHOWN: usize = 50;

/// Why re-running a file is safe, said after a run cut short.
const RERUN_NOTE: &str = "re-running the same file is safe: lines already stored are duplicates and change nothing \
     (within one publish.time_granularity_secs window, an hour by default)";

fn bulk_format(args: &PublishArgs, path: &Path, text: &str) -> BulkFormat {
    match args.format.as_deref().and_then(BulkFormat::from_name) {
        Some(format) => format,
        None => bulk::detect_format(path, text),
    }
}

/// Bulk publish with a progress bar; prints each line's outcome.
pub async fn publish_file(args: &PublishArgs, path: &Path, json: bool) -> anyhow::Result<ExitCode> {
    use anyhow::Context;
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let lines = bulk::read_bulk(&text, bulk_format(args, path, &text), unix_now())
        .with_context(|| format!("cannot read {}", path.display()))?;
    let mut client = connect(&args.target).await?;
    let progress = ProgressBar::new(lines.len() as u64);
    progress.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} lines {per_sec} eta {eta}").expect("valid template"),
    );
    let mut report = BulkReport { dry_run: args.dry_run, lines: lines.len(), ..BulkReport::default() };
    let mut pending: Vec<(usize, String, Draft)> = Vec::new();
    for line in lines {
        match line.draft {
            Ok(draft) => pending.push((line.line, line.source, draft)),
            Err(e) if e.is_skip() => report.skip(line.line, &line.source, e.code(), &e.to_string()),
            Err(e) => report.refuse(line.line, &line.source, "invalid_line", &e.to_string()),
        }
    }
    progress.inc((report.refused.len() + report.skipped.len()) as u64);
    let mut failure = None;
    for chunk in pending.chunks(PUBLISH_CHUNK) {
        let drafts = chunk.iter().map(|(_, _, d)| d.clone()).collect();
        let request = PublishRequest { drafts, dry_run: args.dry_run };
        let reply = match client.publish(request).await {
            Ok(reply) => reply.into_inner(),
            Err(status) => {
                failure = Some((chunk[0].0, status_error(status)));
                break;
            }
        };
        for ((line, source, _), outcome) in chunk.iter().zip(reply.outcomes) {
            report.record(*line, source, outcome);
        }
        progress.inc(chunk.len() as u64);
    }
    progress.finish_and_clear();
    let Some((line, error)) = failure else {
        report.print(json);
        return Ok(if report.refused.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE });
    };
    let error = error.context(format!("publishing stopped at line {line} of {}", path.display()));
    report.stopped = Some(Stopped { line, error: errors::json_error(&error) });
    report.print(json);
    Err(if json { Reported(error).into() } else { error })
}

/// Where a run was cut short, and why.
struct Stopped {
    /// The first line of the chunk that failed: from it on, nothing is known stored.
    line: usize,
    error: Value,
}

/// A line the node accepted.
struct Accepted {
    line: usize,
    id: Vec<u8>,
    /// New (in a dry run: the node does not hold the record yet).
    created: bool,
    /// Dry run: the exact record bytes that would be signed.
    record: Vec<u8>,
}

/// What a bulk run did, line by line.
#[derive(Default)]
struct BulkReport {
    dry_run: bool,
    /// Lines (or items) the file holds.
    lines: usize,
    created: usize,
    duplicates: usize,
    accepted: Vec<Accepted>,
    refused: Vec<(usize, String, String, String)>,
    /// (line, source, reason code, reason) of items cirfed has no record for.
    skipped: Vec<(usize, String, &'static str, String)>,
    /// Per line, what scrubbing changed.
    redacted: Vec<(usize, Vec<proto::Redaction>)>,
    /// Set when the node failed before the end of the file.
    stopped: Option<Stopped>,
}

impl BulkReport {
    fn record(&mut self, line: usize, source: &str, outcome: proto::Outcome) {
        if !outcome.error.is_empty() {
            return self.refuse(line, source, &outcome.error_code, &outcome.error);
        }
        if !outcome.redactions.is_empty() {
            self.redacted.push((line, outcome.redactions));
        }
        let created = if self.dry_run { !outcome.already_stored } else { outcome.created };
        match created {
            true => self.created += 1,
            false => self.duplicates += 1,
        }
        self.accepted.push(Accepted { line, id: outcome.id, created, record: outcome.record });
    }

    fn skip(&mut self, line: usize, source: &str, code: &'static str, reason: &str) {
        self.skipped.push((line, source.to_string(), code, reason.to_string()));
    }

    /// Skipped items counted by reason code, so a script sees at a glance
    /// how many objects of a bundle were context, unsupported or withdrawn.
    fn skipped_by_reason(&self) -> std::collections::BTreeMap<&'static str, usize> {
        let mut counts = std::collections::BTreeMap::new();
        for (_, _, code, _) in &self.skipped {
            *counts.entry(*code).or_default() += 1;
        }
        counts
    }

    fn refuse(&mut self, line: usize, source: &str, code: &str, reason: &str) {
        self.refused.push((line, source.to_string(), code.to_string(), reason.to_string()));
    }

    fn print(&self, json: bool) {
        match json {
            true => print_json(&self.json()),
            false => self.print_human(),
        }
    }

    fn json(&self) -> Value {
        let redacted: Vec<_> = self
            .redacted
            .iter()
            .map(|(line, redactions)| json!({ "line": line, "redactions": output::redactions_json(redactions) }))
            .collect();
        let refused: Vec<_> = self
            .refused
            .iter()
            .map(|(line, source, code, reason)| json!({ "line": line, "source": source, "error_code": code, "error": reason }))
            .collect();
        let skipped: Vec<_> = self
            .skipped
            .iter()
            .map(|(line, source, code, reason)| json!({ "line": line, "source": source, "code": code, "reason": reason }))
            .collect();
        let records: Vec<_> = self
            .accepted
            .iter()
            .map(|a| match self.dry_run {
                true => json!({
                    "line": a.line, "id": hex::encode(&a.id), "already_stored": !a.created, "record": hex::encode(&a.record),
                }),
                false => json!({ "line": a.line, "id": hex::encode(&a.id), "created": a.created }),
            })
            .collect();
        let mut value = json!({
            "dry_run": self.dry_run,
            "accepted": self.created + self.duplicates, "created": self.created, "duplicates": self.duplicates,
            "records": records, "refused": refused, "skipped": skipped, "redacted": redacted,
            "skipped_by_reason": self.skipped_by_reason(),
        });
        if self.dry_run {
            value["would_publish"] = json!(self.created);
            value["already_stored"] = json!(self.duplicates);
        }
        if let Some(stopped) = &self.stopped {
            value["error"] = stopped.error["error"].clone();
            value["stopped_at_line"] = json!(stopped.line);
            value["rerun_safe"] = json!(true);
        }
        value
    }

    fn print_human(&self) {
        let (refused, skipped) = (self.refused.len(), self.skipped.len());
        match self.dry_run {
            true => println!(
                "dry run: nothing was signed or stored; {} line(s) would be published, {} already stored, \
                 refused {refused}, skipped {skipped}",
                self.created, self.duplicates
            ),
            false => println!(
                "accepted {} ({} new, {} already published), refused {refused}, skipped {skipped}",
                self.created + self.duplicates,
                self.created,
                self.duplicates
            ),
        }
        if skipped > 0 {
            let counts: Vec<String> =
                self.skipped_by_reason().iter().map(|(code, n)| format!("{n} {code}")).collect();
            println!("skipped by reason: {}", counts.join(", "));
        }
        if let Some(stopped) = &self.stopped {
            println!(
                "stopped at line {} of {}: the lines above were acknowledged by the node; from line {} on, \
                 nothing is known to be stored ({})",
                stopped.line,
                self.lines,
                stopped.line,
                stopped.error["error"]["message"].as_str().unwrap_or_default()
            );
            println!("{RERUN_NOTE}");
        }
        self.print_lines();
    }

    fn print_lines(&self) {
        if self.dry_run {
            for a in self.accepted.iter().take(MAX_REFUSALS_SHOWN) {
                let (line, id) = (a.line, hex::encode(&a.id));
                match a.created {
                    true => {
                        println!("  line {line}: would share record {id} ({} bytes; --json shows them)", a.record.len())
                    }
                    false => println!("  line {line}: already stored as record {id}"),
                }
            }
        }
        for (line, redactions) in self.redacted.iter().take(MAX_REFUSALS_SHOWN) {
            for r in redactions {
                println!("  line {line}: {} {} in {}: shared as {:?}", r.action, r.detector, r.field, r.replacement);
            }
        }
        for (line, source, code, reason) in self.refused.iter().take(MAX_REFUSALS_SHOWN) {
            println!("  line {line}: refused: {code}: {reason}  [{source}]");
        }
        for (line, source, _, reason) in self.skipped.iter().take(MAX_REFUSALS_SHOWN) {
            println!("  line {line}: skipped: {reason}  [{source}]");
        }
        let hidden = self.refused.len().saturating_sub(MAX_REFUSALS_SHOWN)
            + self.skipped.len().saturating_sub(MAX_REFUSALS_SHOWN);
        if hidden > 0 {
            println!("  ... and {hidden} more (use --json for all)");
        }
    }
}
