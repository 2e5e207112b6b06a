//! `cirfed export`: the running node's feed as a STIX 2.1 bundle, a MISP feed
//! directory or a blocklist. The node writes the bytes (the same its HTTP
//! listener serves); this command streams them to stdout, a file or a directory.

use super::client::{connect, status_error};
use super::drafts::parse_time;
use super::output::print_json;
use crate::ApiTarget;
use anyhow::Context;
use cirfed::cir::{Category, Tlp};
use cirfed::normalize::ObservableType;
use cirfed::proto::{ExportChunk, ExportRequest, ExportSummary};
use cirfed::record::RecordKind;
use clap::{Args, Subcommand};
use serde_json::json;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `cirfed export`
#[derive(Subcommand)]
pub enum ExportCommand {
    /// A STIX 2.1 bundle: indicators, lessons as reports, sightings, retractions
    /// as revoked versions, authors as pseudonymous identities.
    Stix {
        #[command(flatten)]
        filter: FilterArgs,
        /// Write to this file instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        target: ApiTarget,
    },
    /// A MISP feed directory (manifest.json, hashes.csv, one <uuid>.json per
    /// event) that a MISP instance can add as a feed.
    MispFeed {
        /// The feed directory, created if missing; files in it are replaced.
        dir: PathBuf,
        #[command(flatten)]
        filter: FilterArgs,
        #[command(flatten)]
        target: ApiTarget,
    },
    /// A blocklist of the values lookups would report now.
    Blocklist {
        /// plain, csv, suricata-ipv4, suricata-domain, suricata-sha256, nftables, rpz or edl.
        #[arg(long)]
        format: String,
        #[command(flatten)]
        filter: FilterArgs,
        /// Write to this file instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        target: ApiTarget,
    },
}

/// What an export includes; every flag narrows.
#[derive(Args, Clone, Debug, Default)]
pub struct FilterArgs {
    /// Record kinds (indicator, lesson, sighting, retraction, member-card), repeatable.
    #[arg(long = "kind")]
    pub kinds: Vec<String>,
    /// Observable types (ipv4, domain, sha256...), repeatable.
    #[arg(long = "type")]
    pub types: Vec<String>,
    /// Lowest CIR level, 1-5.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=5))]
    pub min_level: Option<u32>,
    /// Lowest score (confidence after sightings and decay), 0-100.
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=100))]
    pub min_score: Option<u32>,
    /// Categories (malware, phishing...), repeatable.
    #[arg(long = "category")]
    pub categories: Vec<String>,
    /// Most permissive TLP included (clear, green, amber, amber+strict); RED never leaves.
    #[arg(long)]
    pub tlp: Option<String>,
    /// Records created at or after this time (RFC 3339 or unix seconds).
    #[arg(long)]
    pub since: Option<String>,
}

impl FilterArgs {
    fn request(&self, format: String) -> anyhow::Result<ExportRequest> {
        let kinds =
            self.kinds.iter().map(|k| Ok(k.parse::<RecordKind>()?.code() as i32)).collect::<anyhow::Result<_>>()?;
        let types =
            self.types.iter().map(|t| Ok(t.parse::<ObservableType>()?.code() as i32)).collect::<anyhow::Result<_>>()?;
        let categories =
            self.categories.iter().map(|c| Ok(c.parse::<Category>()?.code())).collect::<anyhow::Result<_>>()?;
        let max_tlp = match &self.tlp {
            Some(name) => match name.parse::<Tlp>()? {
                Tlp::Red => anyhow::bail!("--tlp red: TLP:RED records never leave the node"),
                tlp => tlp.code(),
            },
            None => 0,
        };
        let since = match &self.since {
            Some(text) => parse_time(text, "--since")?,
            None => 0,
        };
        Ok(ExportRequest {
            format,
            kinds,
            types,
            min_level: self.min_level.unwrap_or(0),
            min_score: self.min_score.unwrap_or(0),
            categories,
            max_tlp,
            since,
        })
    }
}

/// Runs `cirfed export`.
pub async fn export(command: ExportCommand, json: bool) -> anyhow::Result<ExitCode> {
    let (request, target, to) = match command {
        ExportCommand::Stix { filter, out, target } => (filter.request("stix".into())?, target, To::stream(out)),
        ExportCommand::MispFeed { dir, filter, target } => (filter.request("misp-feed".into())?, target, To::Dir(dir)),
        ExportCommand::Blocklist { format, filter, out, target } => {
            (filter.request(format!("blocklist/{format}"))?, target, To::stream(out))
        }
    };
    let mut client = connect(&target).await?;
    let mut chunks = client.export(request).await.map_err(status_error)?.into_inner();
    let mut writer = to.open()?;
    let mut summary = None;
    while let Some(chunk) = chunks.message().await.map_err(status_error)? {
        let ExportChunk { file, data, summary: last } = chunk;
        writer.write(&file, &data)?;
        summary = last.or(summary);
    }
    writer.finish()?;
    let summary = summary.context("the node ended the export without its summary")?;
    report(&summary, &to, json);
    Ok(ExitCode::SUCCESS)
}

/// Where the bytes go.
enum To {
    Stdout,
    File(PathBuf),
    Dir(PathBuf),
}

impl To {
    fn stream(out: Option<PathBuf>) -> To {
        out.map_or(To::Stdout, To::File)
    }

    fn open(&self) -> anyhow::Result<Writer> {
        Ok(match self {
            To::Stdout => Writer::Stream(Box::new(BufWriter::new(io::stdout().lock()))),
            To::File(path) => Writer::Stream(Box::new(BufWriter::new(
                File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
            ))),
            To::Dir(dir) => {
                std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
                Writer::Dir { dir: dir.clone(), file: None }
            }
        })
    }
}

enum Writer {
    Stream(Box<dyn Write>),
    /// The directory, and the file being written (its final name, its temporary file).
    Dir {
        dir: PathBuf,
        file: Option<(PathBuf, BufWriter<tempfile::NamedTempFile>)>,
    },
}

impl Writer {
    fn write(&mut self, file: &str, data: &[u8]) -> anyhow::Result<()> {
        match self {
            Writer::Stream(out) => out.write_all(data).context("cannot write the export"),
            Writer::Dir { dir, file: current } => {
                if current.as_ref().is_none_or(|(path, _)| !path.ends_with(file)) {
                    finish_file(current.take())?;
                    *current = Some((dir.join(safe_name(file)?), temp_in(dir)?));
                }
                let (_, out) = current.as_mut().expect("opened above");
                out.write_all(data).context("cannot write the export")
            }
        }
    }

    fn finish(self) -> anyhow::Result<()> {
        match self {
            Writer::Stream(mut out) => out.flush().context("cannot write the export"),
            Writer::Dir { file, .. } => finish_file(file),
        }
    }
}

/// A name the node sent, as a file directly in the feed directory: nothing
/// from the wire may write outside it.
fn safe_name(name: &str) -> anyhow::Result<&Path> {
    let path = Path::new(name);
    let plain =
        path.components().count() == 1 && matches!(path.components().next(), Some(std::path::Component::Normal(_)));
    anyhow::ensure!(plain, "the node sent a file name that is not a plain name: {name:?}");
    Ok(path)
}

fn temp_in(dir: &Path) -> anyhow::Result<BufWriter<tempfile::NamedTempFile>> {
    let file = tempfile::NamedTempFile::new_in(dir).with_context(|| format!("cannot write in {}", dir.display()))?;
    Ok(BufWriter::new(file))
}

/// Renames a finished file into place, so a reader never sees half of one.
fn finish_file(file: Option<(PathBuf, BufWriter<tempfile::NamedTempFile>)>) -> anyhow::Result<()> {
    let Some((path, out)) = file else { return Ok(()) };
    let temp = out.into_inner().map_err(|e| e.into_error()).context("cannot write the export")?;
    temp.persist(&path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

fn report(summary: &ExportSummary, to: &To, json: bool) {
    let sorted = |map: &std::collections::HashMap<String, u64>| {
        let mut items: Vec<_> = map.iter().map(|(k, v)| (k.clone(), *v)).collect();
        items.sort();
        items
    };
    if json && !matches!(to, To::Stdout) {
        print_json(&json!({ "exported": summary.exported, "skipped": summary.skipped }));
        return;
    }
    // The export itself may be on stdout: the summary goes to stderr.
    let exported: Vec<String> = sorted(&summary.exported).iter().map(|(k, v)| format!("{v} {k}")).collect();
    let skipped: Vec<String> = sorted(&summary.skipped).iter().map(|(k, v)| format!("{v} {k}")).collect();
    eprintln!("exported: {}", if exported.is_empty() { "nothing".into() } else { exported.join(", ") });
    if !skipped.is_empty() {
        eprintln!("left out: {}", skipped.join(", "));
        for (reason, _) in sorted(&summary.skipped) {
            if let Some(why) = left_out_because(&reason) {
                eprintln!("  {reason}: {why}");
            }
        }
    }
}

/// What a reason code in the summary means, for the reasons a user may not expect.
fn left_out_because(reason: &str) -> Option<&'static str> {
    Some(match reason {
        "tlp_red" => "TLP:RED records never leave the node",
        "keyed_hash" => "a keyed hash is not the observable itself, so no STIX pattern can match it",
        "tlp_above_ceiling" => "above the --tlp given",
        "member_revocation" => "STIX has no object for the revocation of a member's key",
        "retraction_not_in_force" => "a retraction by neither the record's author nor the authority",
        "retraction_target_missing" => "a retraction of a record this node does not hold",
        _ => return None,
    })
}
