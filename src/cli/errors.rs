//! The one place where CLI errors get their stable code and are printed:
//! scripts read `{"error": {"code", "message", "causes"}}` with `--json`,
//! people read one line on stderr with each cause once.

use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;

/// Why a client command could not talk to the node, in words a user can act on.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The node directory names no running node: no address file, or a stale one.
    #[error("the node in {} is not running ({reason}); start it with `cirfed serve --dir {}`", .dir.display(), .dir.display())]
    NodeNotRunning { dir: PathBuf, reason: String },
    /// Nothing answers at the address (wrong address, node down).
    #[error("cannot reach the node's local API at {addr} (is `cirfed serve` running?)")]
    Unreachable { addr: String },
    /// The node took the connection but did not answer: paused, overloaded or not a cirfed node.
    #[error("the node did not answer within {}s: it may be paused or overloaded (raise it with --timeout SECS)", .after.as_secs())]
    Timeout { after: Duration },
    /// The node answered with an error.
    #[error("{} ({:?})", .0.message(), .0.code())]
    Api(tonic::Status),
    /// The node refused the one record a command asked it to publish.
    #[error("refused ({code}): {message}")]
    Refused { code: String, message: String },
}

/// An error the command already reported on stdout as JSON, along with its
/// partial results (a bulk publish cut short): print it once more on stderr only.
#[derive(Debug)]
pub struct Reported(pub anyhow::Error);

impl std::fmt::Display for Reported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&causes(&self.0).join(": "))
    }
}

impl std::error::Error for Reported {}

/// The stable code of an error, for scripts.
pub fn code(error: &anyhow::Error) -> String {
    // anyhow finds a context type; `chain` finds the sources below them.
    let client = error.downcast_ref::<ClientError>();
    let client = client.or_else(|| error.chain().find_map(|cause| cause.downcast_ref::<ClientError>()));
    if let Some(client) = client {
        return client_code(client);
    }
    for cause in error.chain() {
        if cause.downcast_ref::<std::io::Error>().is_some() {
            return "io_error".into();
        }
        if cause.downcast_ref::<super::drafts::DraftError>().is_some() {
            return "invalid_input".into();
        }
        if let Some(interop) = cause.downcast_ref::<cirfed::interop::InteropError>() {
            return interop.code().into();
        }
    }
    "failed".into()
}

fn client_code(error: &ClientError) -> String {
    match error {
        ClientError::NodeNotRunning { .. } => "node_not_running".into(),
        ClientError::Unreachable { .. } => "unreachable".into(),
        ClientError::Timeout { .. } => "timeout".into(),
        ClientError::Api(status) => grpc_code(status.code()).into(),
        ClientError::Refused { code, .. } => code.clone(),
    }
}

/// gRPC status codes as the snake_case names scripts match on.
fn grpc_code(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "ok",
        Code::Cancelled => "cancelled",
        Code::Unknown => "unknown",
        Code::InvalidArgument => "invalid_argument",
        Code::DeadlineExceeded => "timeout",
        Code::NotFound => "not_found",
        Code::AlreadyExists => "already_exists",
        Code::PermissionDenied => "permission_denied",
        Code::ResourceExhausted => "resource_exhausted",
        Code::FailedPrecondition => "failed_precondition",
        Code::Aborted => "aborted",
        Code::OutOfRange => "out_of_range",
        Code::Unimplemented => "unimplemented",
        Code::Internal => "internal",
        Code::Unavailable => "unavailable",
        Code::DataLoss => "data_loss",
        Code::Unauthenticated => "unauthenticated",
    }
}

/// The error's chain, each cause once. Wrapped errors often repeat their
/// source's text ("tcp connect error: tcp connect error"): a cause whose text
/// an earlier one already says is left out.
pub fn causes(error: &anyhow::Error) -> Vec<String> {
    let mut shown: Vec<String> = Vec::new();
    for cause in error.chain() {
        let text = cause.to_string();
        let text = text.trim();
        if text.is_empty() || shown.iter().any(|earlier| earlier.contains(text)) {
            continue;
        }
        shown.push(text.to_string());
    }
    shown
}

/// The JSON error object: `{"error": {"code", "message", "causes"}}`.
pub fn json_error(error: &anyhow::Error) -> Value {
    let causes = causes(error);
    json!({ "error": { "code": code(error), "message": causes.join(": "), "causes": causes } })
}

/// Prints a failed command's error: JSON on stdout for `--json` (unless the
/// command already did), and always one line on stderr.
pub fn print(error: &anyhow::Error, json: bool) {
    if let Some(Reported(reported)) = error.downcast_ref::<Reported>() {
        return eprintln!("error: {}", causes(reported).join(": "));
    }
    if json {
        super::output::print_json(&json_error(error));
    }
    eprintln!("error: {}", causes(error).join(": "));
}

/// A command line clap refuses: with `--json` anywhere on it, also as a JSON
/// error object (code `usage`); exits 2 like clap itself.
pub fn usage(error: clap::Error) -> std::process::ExitCode {
    let json = std::env::args().any(|arg| arg == "--json");
    if json && error.use_stderr() {
        let text = error.render().to_string();
        let message = text.lines().next().unwrap_or_default().trim_start_matches("error: ");
        super::output::print_json(&json!({ "error": { "code": "usage", "message": message, "causes": [message] } }));
    }
    let _ = error.print();
    std::process::ExitCode::from(u8::try_from(error.exit_code()).unwrap_or(2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_repeating_an_earlier_one_is_printed_once() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused (os error 111)");
        let wrapped = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, io);
        let error = anyhow::Error::new(wrapped).context("tcp connect error").context("tcp connect error");
        assert_eq!(causes(&error), ["tcp connect error", "Connection refused (os error 111)"]);
    }

    #[test]
    fn node_errors_keep_their_grpc_code() {
        let error = anyhow::Error::new(ClientError::Api(tonic::Status::not_found("no record abc")));
        assert_eq!(code(&error), "not_found");
        let value = json_error(&error.context("cannot show abc"));
        assert_eq!(value["error"]["code"], "not_found");
        assert_eq!(value["error"]["message"], "cannot show abc: no record abc (NotFound)");
    }
}
