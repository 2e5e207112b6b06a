//! The one place where errors become gRPC status codes, for the local API
//! and the peer service alike.

use crate::node::NodeError;
use crate::record::RecordError;
use crate::store::StoreError;
use tonic::{Code, Status};

/// Maps a node error onto the status a client should see.
pub fn to_status(error: NodeError) -> Status {
    let code = match &error {
        NodeError::Record(_) | NodeError::BatchTooLarge { .. } | NodeError::EmptyDraft => Code::InvalidArgument,
        NodeError::NotAuthor { .. } | NodeError::TlpViolation { .. } => Code::PermissionDenied,
        NodeError::Scrub(_) | NodeError::Warninglisted { .. } | NodeError::IdentityChanged(_) => {
            Code::FailedPrecondition
        }
        NodeError::Write(_) => Code::Unavailable,
        NodeError::NotFound(_) => Code::NotFound,
        NodeError::Store(StoreError::Locked(_)) => Code::Unavailable,
        NodeError::Store(_) => Code::Internal,
    };
    Status::new(code, error.to_string())
}

/// A request field that is not what the API expects.
pub fn invalid(error: RecordError) -> Status {
    Status::invalid_argument(error.to_string())
}

/// A blocking task that did not finish (the runtime is shutting down).
pub fn interrupted(error: tokio::task::JoinError) -> Status {
    Status::unavailable(format!("request interrupted: {error}"))
}
