//! The `cirfed` command line: parse arguments, then call the library.
//! Command bodies live in `src/cli/` (binary-only modules).

mod cli;

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// cirfed: a federation node for cloud incident sharing.
#[derive(Parser)]
#[command(name = "cirfed", version, about, propagate_version = true)]
pub struct Cli {
    /// Print machine-readable JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// Where client commands find the running node's local API.
#[derive(Args, Clone, Debug)]
pub struct ApiTarget {
    /// Local API address (host:port) of the running node.
    #[arg(long, env = "CIRFED_API", global = true)]
    pub api: Option<String>,
    /// Node directory; its api.addr file (written by `serve`) gives the address.
    #[arg(long = "node", env = "CIRFED_NODE", global = true)]
    pub node: Option<PathBuf>,
    /// Seconds to wait for the node to answer a request.
    #[arg(long, global = true, value_name = "SECS", default_value_t = cli::client::DEFAULT_TIMEOUT.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: u64,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run a local demo: operator, node, publishing and lookup, narrated.
    Demo(cli::demo::DemoArgs),
    /// Derive the CIR level (1-5) from ENISA, NIST or TR 62 impact ratings.
    Classify(cli::admin::ClassifyArgs),
    /// Federation operator commands.
    #[command(subcommand)]
    Federation(cli::admin::FederationCommand),
    /// Member node set-up commands.
    #[command(subcommand)]
    Node(cli::admin::NodeCommand),
    /// Run the node: store, match engine and local API.
    Serve(cli::admin::ServeArgs),
    /// Publish indicators, lessons learned or a bulk file.
    Publish(Box<cli::publish::PublishArgs>),
    /// Look observables up against the feed.
    Lookup(cli::lookup::LookupArgs),
    /// Write the feed as a STIX 2.1 bundle, a MISP feed or a blocklist.
    #[command(subcommand)]
    Export(cli::export::ExportCommand),
    /// Show one record.
    Show(cli::read::ShowArgs),
    /// List records of one kind, newest last.
    List(cli::read::ListArgs),
    /// Retract a record this node published.
    Retract(cli::publish::RetractArgs),
    /// Report a sighting of an indicator: seen, false positive or expired.
    Sighting(cli::publish::SightingArgs),
    /// Import signed records from a file (one base64 envelope per line), e.g. a
    /// member revocation from the operator; they spread like any record. Or a
    /// MISP feed directory: `import misp-feed DIR`.
    Import(cli::publish::ImportArgs),
    /// Show the node's identity, feed counts and peers.
    Status(cli::read::StatusArgs),
    /// Peer commands against the running node.
    #[command(subcommand)]
    Peer(cli::admin::PeerCommand),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return cli::errors::usage(error),
    };
    // The demo narrates on stdout; its nodes' logs would only interleave.
    let logs = if matches!(cli.command, Command::Demo(_)) { "error" } else { "warn,cirfed=info" };
    cli::init_tracing(logs);
    let json = cli.json;
    // `lookup` exits like grep: 0 a match, 1 none, 2 an error.
    let failed = if matches!(cli.command, Command::Lookup(_)) { ExitCode::from(2) } else { ExitCode::FAILURE };
    match cli::run(cli) {
        Ok(code) => code,
        Err(error) => {
            cli::errors::print(&error, json);
            failed
        }
    }
}
