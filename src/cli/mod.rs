//! Command bodies of the `cirfed` binary.

pub mod admin;
pub mod bulk;
pub mod client;
pub mod demo;
pub mod drafts;
pub mod errors;
pub mod export;
pub mod import;
pub mod lookup;
pub mod output;
pub mod publish;
pub mod read;

use crate::{Cli, Command};
use std::process::ExitCode;

/// Logs go to stderr, filtered by `RUST_LOG`, else by `default`.
pub fn init_tracing(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| default.into());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).init();
}

/// Runs one command; the exit code says whether everything it was asked succeeded.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let json = cli.json;
    match cli.command {
        Command::Classify(args) => admin::classify(args, json),
        Command::Federation(command) => admin::federation(command, json),
        Command::Node(command) => admin::node(command, json),
        command => runtime()?.block_on(run_async(command, json)),
    }
}

async fn run_async(command: Command, json: bool) -> anyhow::Result<ExitCode> {
    match command {
        Command::Demo(args) => demo::run(args).await,
        Command::Serve(args) => admin::serve(args).await,
        Command::Publish(args) => publish::publish(*args, json).await,
        Command::Retract(args) => publish::retract(args, json).await,
        Command::Sighting(args) => publish::sighting(args, json).await,
        Command::Import(args) => publish::import(args, json).await,
        Command::Lookup(args) => lookup::lookup(args, json).await,
        Command::Export(command) => export::export(command, json).await,
        Command::Show(args) => read::show(args, json).await,
        Command::List(args) => read::list(args, json).await,
        Command::Status(args) => read::status(args, json).await,
        Command::Peer(command) => admin::peer(command, json).await,
        Command::Classify(_) | Command::Federation(_) | Command::Node(_) => unreachable!("handled without a runtime"),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}
