//! The one place HTTP listener errors become status codes, as TAXII 2.1
//! error resources (`title`, `description`, `http_status`) in the TAXII
//! media type, which TAXII clients and everyone else can read.

use crate::interop::taxii::TAXII_MEDIA_TYPE;
use crate::interop::InteropError;
use axum::http::header::{CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// Why a request was not served.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// No credentials, or ones that name no user.
    #[error("authentication required: send `Authorization: Bearer <token>` or HTTP Basic with the token as password")]
    Unauthorized,
    /// The user lacks the right.
    #[error("{0}")]
    Forbidden(String),
    /// No such collection, object or status.
    #[error("{0}")]
    NotFound(String),
    /// The Accept header names no media type this endpoint serves.
    #[error("{0}")]
    NotAcceptable(String),
    /// The Content-Type is not one this endpoint reads.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The body is over `taxii.max_content_length`.
    #[error("request body over the limit of {limit} bytes (taxii.max_content_length)")]
    TooLarge { limit: usize },
    /// The request is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// The node could not serve it.
    #[error("{0}")]
    Internal(String),
}

impl HttpError {
    fn status(&self) -> StatusCode {
        match self {
            HttpError::Unauthorized => StatusCode::UNAUTHORIZED,
            HttpError::Forbidden(_) => StatusCode::FORBIDDEN,
            HttpError::NotFound(_) => StatusCode::NOT_FOUND,
            HttpError::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            HttpError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            HttpError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            HttpError::BadRequest(_) => StatusCode::BAD_REQUEST,
            HttpError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<InteropError> for HttpError {
    fn from(error: InteropError) -> Self {
        match error {
            InteropError::Invalid { .. } | InteropError::Unsupported(_) => HttpError::BadRequest(error.to_string()),
            InteropError::TooLarge { limit, .. } => HttpError::TooLarge { limit: limit as usize },
            InteropError::Io(_) | InteropError::Feed(_) => HttpError::Internal(error.to_string()),
        }
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::warn!(reason = %self, "http request failed");
        }
        let body = serde_json::json!({
            "title": status.canonical_reason().unwrap_or("error"),
            "description": self.to_string(),
            "http_status": status.as_u16().to_string(),
        });
        let mut response = (status, [(CONTENT_TYPE, TAXII_MEDIA_TYPE)], body.to_string()).into_response();
        if status == StatusCode::UNAUTHORIZED {
            let challenge = axum::http::HeaderValue::from_static("Basic realm=\"cirfed\", Bearer realm=\"cirfed\"");
            response.headers_mut().insert(WWW_AUTHENTICATE, challenge);
        }
        response
    }
}
