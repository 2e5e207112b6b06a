//! Publishing commands: indicator, lesson, bulk file, retract.

use super::client::{connect, status_error};
use super::drafts::{self, IndicatorFields};
use super::errors::{self, ClientError, Reported};
use super::output::{self, print_json};
use crate::ApiTarget;
use anyhow::Context;
use cirfed::cir::{SightingType, Tlp};
use cirfed::node::unix_now;
use cirfed::proto::{self, draft, Draft, Envelope, ImportRequest, PublishRequest, Retraction, Sighting};
use cirfed::record::RecordId;
use clap::{Args, Subcommand};
use prost::Message;
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;

/// `cirfed publish`
#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct PublishArgs {
    #[command(subcommand)]
    pub what: Option<PublishWhat>,
    /// Bulk file: JSON lines, CSV (with header), a MISP event or a STIX 2.1 bundle.
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// Format of --file, when its name and content do not tell.
    #[arg(long, value_parser = ["jsonl", "csv", "misp", "stix"])]
    pub format: Option<String>,
    /// Show exactly the record(s) that would be signed and shared, and every
    /// redaction the scrub policy makes; sign and store nothing.
    #[arg(long, global = true)]
    pub dry_run: bool,
    #[command(flatten)]
    pub target: ApiTarget,
}

#[derive(Subcommand)]
pub enum PublishWhat {
    /// Publish one indicator.
    Indicator(IndicatorArgs),
    /// Publish a lessons-learned record (post-mortem) from a TOML file.
    Lesson(LessonArgs),
}

/// `cirfed publish indicator`
#[derive(Args)]
pub struct IndicatorArgs {
    /// Observable type (detected from the value when omitted).
    #[arg(long = "type")]
    pub kind: Option<String>,
    /// The observable.
    #[arg(long)]
    pub value: String,
    /// CIR level 1-5 (see `cirfed classify`).
    #[arg(long)]
    pub level: Option<u8>,
    /// TLP: clear, green, amber, amber+strict, red (default: the node's).
    #[arg(long)]
    pub tlp: Option<String>,
    /// Confidence 0-100.
    #[arg(long)]
    pub confidence: Option<u8>,
    /// Incident category; repeat for several.
    #[arg(long = "category")]
    pub categories: Vec<String>,
    /// Days until the indicator expires (default: the node's).
    #[arg(long)]
    pub valid_days: Option<u32>,
    /// Free text for analysts.
    #[arg(long)]
    pub description: Option<String>,
    /// Tag; repeat for several.
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// Opaque reference grouping records of one incident.
    #[arg(long)]
    pub incident_ref: Option<String>,
    /// First seen (RFC 3339 or unix seconds).
    #[arg(long)]
    pub first_seen: Option<String>,
    /// Last seen (RFC 3339 or unix seconds).
    #[arg(long)]
    pub last_seen: Option<String>,
}

/// `cirfed publish lesson`
#[derive(Args)]
pub struct LessonArgs {
    /// Post-mortem TOML file (start from --template).
    #[arg(required_unless_present = "template")]
    pub file: Option<PathBuf>,
    /// Print a post-mortem template to fill in.
    #[arg(long)]
    pub template: bool,
}

/// `cirfed retract`
#[derive(Args)]
pub struct RetractArgs {
    /// Id of the record to retract.
    pub id: RecordId,
    /// Why, for the analysts who relied on it.
    #[arg(long)]
    pub reason: String,
    /// TLP (default: the retracted record's, so it reaches whoever got that).
    #[arg(long, value_parser = parse_tlp)]
    pub tlp: Option<Tlp>,
    #[command(flatten)]
    pub target: ApiTarget,
}

pub async fn publish(args: PublishArgs, json: bool) -> anyhow::Result<ExitCode> {
    if let Some(PublishWhat::Lesson(LessonArgs { template: true, .. })) = &args.what {
        print!("{}", drafts::LESSON_TEMPLATE);
        return Ok(ExitCode::SUCCESS);
    }
    let draft = match (&args.what, &args.file) {
        (Some(PublishWhat::Indicator(fields)), _) => drafts::indicator_draft(&indicator_fields(fields), unix_now())?,
        (Some(PublishWhat::Lesson(lesson)), _) => {
            let path = lesson.file.as_ref().expect("clap requires a file without --template");
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            drafts::lesson_draft(&text).with_context(|| format!("invalid lesson {}", path.display()))?
        }
        (None, Some(path)) => return super::bulk::publish_file(&args, path, json).await,
        (None, None) => {
            anyhow::bail!("say what to publish: `publish indicator`, `publish lesson FILE` or `publish --file F`")
        }
    };
    publish_one(&args.target, draft, args.dry_run, json).await
}

fn indicator_fields(args: &IndicatorArgs) -> IndicatorFields {
    IndicatorFields {
        kind: args.kind.clone(),
        value: args.value.clone(),
        level: args.level,
        tlp: args.tlp.clone(),
        confidence: args.confidence,
        categories: args.categories.clone(),
        valid_days: args.valid_days,
        description: args.description.clone(),
        tags: args.tags.clone(),
        incident_ref: args.incident_ref.clone(),
        first_seen: args.first_seen.clone(),
        last_seen: args.last_seen.clone(),
    }
}

/// Publishes one draft and prints its id and redactions (or, in a dry run,
/// the record that would be signed).
async fn publish_one(target: &ApiTarget, draft: Draft, dry_run: bool, json: bool) -> anyhow::Result<ExitCode> {
    let mut client = connect(target).await?;
    let request = PublishRequest { drafts: vec![draft], dry_run };
    let reply = client.publish(request).await.map_err(status_error)?.into_inner();
    let outcome = reply.outcomes.into_iter().next().context("the node returned no outcome")?;
    if !outcome.error.is_empty() {
        let error = anyhow::Error::new(ClientError::Refused { code: outcome.error_code, message: outcome.error });
        if !json {
            return Err(error);
        }
        let mut value = errors::json_error(&error);
        value["accepted"] = json!(false);
        value["redactions"] = output::redactions_json(&outcome.redactions);
        print_json(&value);
        return Err(Reported(error).into());
    }
    let id = hex::encode(&outcome.id);
    if dry_run {
        print_dry_run(&outcome, json);
        return Ok(ExitCode::SUCCESS);
    }
    if json {
        print_json(&json!({
            "accepted": true, "id": id, "created": outcome.created,
            "redactions": output::redactions_json(&outcome.redactions),
        }));
        return Ok(ExitCode::SUCCESS);
    }
    match outcome.created {
        true => println!("published {id}"),
        false => println!("already published {id} (no change)"),
    }
    if !outcome.redactions.is_empty() {
        println!("scrubbed before signing:\n{}", output::redactions_table(&outcome.redactions));
    }
    Ok(ExitCode::SUCCESS)
}

fn print_dry_run(outcome: &proto::Outcome, json: bool) {
    if json {
        let mut value = output::prepared_json(outcome);
        value["dry_run"] = json!(true);
        value["already_stored"] = json!(outcome.already_stored);
        value["redactions"] = output::redactions_json(&outcome.redactions);
        print_json(&value);
        return;
    }
    match outcome.already_stored {
        false => println!(
            "dry run: nothing was signed or stored. This record ({} bytes, id {}) would be signed and shared:",
            outcome.record.len(),
            hex::encode(&outcome.id)
        ),
        true => println!(
            "dry run: nothing was signed or stored. The node already stores this record (id {}): \
             publishing it would change nothing.",
            hex::encode(&outcome.id)
        ),
    }
    println!("{}", output::prepared_table(outcome));
    match outcome.redactions.is_empty() {
        true => println!("the scrub policy changed nothing"),
        false => println!("redactions:\n{}", output::redactions_table(&outcome.redactions)),
    }
    if outcome.redactions.iter().any(|r| r.action == "keyed_hash") {
        println!("note: keyed hashes keep values from outsiders only; any member can test guesses against them");
    }
}

pub async fn retract(args: RetractArgs, json: bool) -> anyhow::Result<ExitCode> {
    let draft = Draft {
        // Zero: the node gives it the retracted record's TLP.
        tlp: args.tlp.map_or(0, Tlp::code),
        body: Some(draft::Body::Retraction(Retraction { target_id: args.id.0.to_vec(), reason: args.reason.clone() })),
    };
    publish_one(&args.target, draft, false, json).await
}

/// `cirfed sighting`
#[derive(Args)]
pub struct SightingArgs {
    /// Id of the indicator record.
    pub id: RecordId,
    /// seen, false-positive or expired.
    #[arg(long = "type", default_value = "seen")]
    pub kind: SightingType,
    /// How many times (for "seen").
    #[arg(long, default_value_t = 1)]
    pub count: u32,
    /// TLP (default: the indicator's, so it travels as far as the indicator).
    #[arg(long, value_parser = parse_tlp)]
    pub tlp: Option<Tlp>,
    #[command(flatten)]
    pub target: ApiTarget,
}

/// A TLP name, for clap.
fn parse_tlp(name: &str) -> Result<Tlp, String> {
    name.parse::<Tlp>().map_err(|e| e.to_string())
}

pub async fn sighting(args: SightingArgs, json: bool) -> anyhow::Result<ExitCode> {
    let sighting = Sighting { indicator_id: args.id.0.to_vec(), r#type: args.kind.code(), count: args.count };
    // Zero: the node gives it the indicator's TLP.
    let draft = Draft { tlp: args.tlp.map_or(0, Tlp::code), body: Some(draft::Body::Sighting(sighting)) };
    publish_one(&args.target, draft, false, json).await
}

/// `cirfed import`
#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ImportArgs {
    #[command(subcommand)]
    pub what: Option<super::import::ImportWhat>,
    /// File of signed envelopes, one base64-encoded protobuf `Envelope` per line.
    pub file: Option<PathBuf>,
    #[command(flatten)]
    pub target: ApiTarget,
}

/// Reads a file of base64 envelopes, one per line (blank lines and `#` comments skipped).
pub fn read_envelopes(text: &str) -> anyhow::Result<Vec<Envelope>> {
    use base64::Engine as _;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|(n, line)| {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(line.trim())
                .with_context(|| format!("line {}: not base64", n + 1))?;
            Envelope::decode(bytes.as_slice()).with_context(|| format!("line {}: not an envelope", n + 1))
        })
        .collect()
}

pub async fn import(args: ImportArgs, json: bool) -> anyhow::Result<ExitCode> {
    let path = match (args.what, &args.file) {
        (Some(super::import::ImportWhat::MispFeed(feed)), _) => {
            return super::import::misp_feed(feed, &args.target, json).await
        }
        (None, Some(path)) => path,
        (None, None) => anyhow::bail!("say what to import: a FILE of signed envelopes, or `import misp-feed DIR`"),
    };
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let envelopes = read_envelopes(&text).with_context(|| format!("invalid {}", path.display()))?;
    let mut client = connect(&args.target).await?;
    let reply = client.import(ImportRequest { envelopes }).await.map_err(status_error)?.into_inner();
    let refused: Vec<_> = reply.outcomes.iter().enumerate().filter(|(_, o)| !o.error.is_empty()).collect();
    if json {
        let outcomes: Vec<_> = reply
            .outcomes
            .iter()
            .map(|o| json!({ "id": hex::encode(&o.id), "created": o.created, "error_code": o.error_code, "error": o.error }))
            .collect();
        print_json(&json!({ "outcomes": outcomes }));
    } else {
        for (n, outcome) in reply.outcomes.iter().enumerate() {
            match outcome.error.is_empty() {
                true => println!("record {}: imported {}", n + 1, hex::encode(&outcome.id)),
                false => println!("record {}: refused: {}: {}", n + 1, outcome.error_code, outcome.error),
            }
        }
    }
    Ok(if refused.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
