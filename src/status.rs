//! The one place where errors become gRPC status codes, for the local API
//! and the peer service alike.

use crate::interop::InteropError;
use crate::node::NodeError;
use crate::record::RecordError;
use crate::store::StoreError;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tonic::codegen::http;
use tonic::server::NamedService;
use tonic::{Code, Status};
use tower_service::Service;

/// Maps a node error onto the status a client should see.
pub fn to_status(error: NodeError) -> Status {
    let code = match &error {
        NodeError::Record(_) | NodeError::EmptyDraft => Code::InvalidArgument,
        // gRPC's code for a request over a size limit.
        NodeError::BatchTooLarge { .. } => Code::ResourceExhausted,
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

/// A failure of an export or import format.
pub fn interop(error: InteropError) -> Status {
    let code = match &error {
        InteropError::Invalid { .. } | InteropError::Unsupported(_) => Code::InvalidArgument,
        InteropError::TooLarge { .. } => Code::ResourceExhausted,
        InteropError::Io(_) => Code::Unavailable,
        InteropError::Feed(_) => Code::Internal,
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

/// tonic refuses a message over a service's decoding limit with OUT_OF_RANGE;
/// gRPC's convention (and every other implementation) says RESOURCE_EXHAUSTED.
/// tonic's message, which names the size and the limit, is kept.
pub fn oversize(status: Status) -> Status {
    if status.code() != Code::OutOfRange || !status.message().contains("message length too large") {
        return status;
    }
    let reason = status.message().trim_start_matches("Error, ");
    Status::resource_exhausted(format!("message over the size limit: {reason}"))
}

/// A tonic service whose refusals of over-size unary requests answer
/// RESOURCE_EXHAUSTED (see [`oversize`]). tonic answers those before any
/// handler runs, in the response headers; streamed requests hit the limit
/// inside the handler, which maps it itself.
#[derive(Debug, Clone)]
pub struct OversizeExhausted<S>(pub S);

impl<S: NamedService> NamedService for OversizeExhausted<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> Service<http::Request<B>> for OversizeExhausted<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let response = self.0.call(request);
        Box::pin(async move {
            let mut response = response.await?;
            if let Some(refused) = Status::from_header_map(response.headers()) {
                if refused.code() == Code::OutOfRange {
                    // Only fails on a message that is not a valid header value; tonic's is.
                    let _ = oversize(refused).add_header(response.headers_mut());
                }
            }
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_over_the_decoding_limit_becomes_resource_exhausted_naming_the_limit() {
        let tonic = Status::out_of_range(
            "Error, decoded message length too large: found 40000000 bytes, the limit is: 33554432 bytes",
        );
        let status = oversize(tonic);
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert!(status.message().contains("the limit is: 33554432 bytes"), "{}", status.message());
    }

    #[test]
    fn other_statuses_pass_unchanged() {
        let status = oversize(Status::out_of_range("cursor past the end"));
        assert_eq!(status.code(), Code::OutOfRange);
        assert_eq!(oversize(Status::not_found("no record")).code(), Code::NotFound);
    }
}
