//! `/misp-feed/`: the node's feed as a MISP feed, read-only, so a MISP
//! instance adds the node as a feed of type "MISP Feed" (URL
//! `https://node:port/misp-feed`, a header `Authorization: Bearer <token>`)
//! and pulls `manifest.json`, then the events whose timestamp changed.
//!
//! Every file is made from the live feed on request, on the blocking pool,
//! and streamed: the rolling event may hold every indicator without a lesson.
//! The streaming helper here serves `/blocklist/` too.

use super::auth::{Caller, Scope};
use super::error::HttpError;
use super::HttpState;
use crate::api::export::{ChannelSink, Piece, EXPORT_CHUNKS_IN_FLIGHT};
use crate::interop::misp::feed::{MispFeed, HASHES, MANIFEST};
use crate::interop::{Filter, InteropError};
use crate::node::{unix_now, Node};
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use futures::StreamExt;
use std::io::Write;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

type Shared = Arc<HttpState>;

const JSON: &str = "application/json";
const CSV: &str = "text/csv; charset=utf-8";

/// The MISP feed routes.
pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/misp-feed/manifest.json", get(manifest))
        .route("/misp-feed/hashes.csv", get(hashes))
        .route("/misp-feed/{file}", get(event))
}

async fn manifest(State(state): State<Shared>, caller: Caller) -> Result<Response, HttpError> {
    caller.require_read(&Scope::MispFeed)?;
    streamed(state.node.clone(), |node, ready, out| {
        let feed = MispFeed::open(node, &Filter::default(), unix_now())?;
        ready.start(JSON, Vec::new());
        Ok(feed.write_manifest(out)?)
    })
    .await
}

async fn hashes(State(state): State<Shared>, caller: Caller) -> Result<Response, HttpError> {
    caller.require_read(&Scope::MispFeed)?;
    streamed(state.node.clone(), |node, ready, out| {
        let feed = MispFeed::open(node, &Filter::default(), unix_now())?;
        ready.start(CSV, Vec::new());
        Ok(feed.write_hashes(out)?)
    })
    .await
}

async fn event(State(state): State<Shared>, caller: Caller, Path(file): Path<String>) -> Result<Response, HttpError> {
    caller.require_read(&Scope::MispFeed)?;
    let uuid = file.strip_suffix(".json").and_then(|u| Uuid::parse_str(u).ok());
    let not_found = {
        let file = file.clone();
        move || HttpError::NotFound(format!("no {file:?} in this MISP feed: see {MANIFEST} and {HASHES}"))
    };
    let uuid = uuid.ok_or_else(not_found.clone())?;
    streamed(state.node.clone(), move |node, ready, out| {
        let feed = MispFeed::open(node, &Filter::default(), unix_now())?;
        if !feed.has_event(&uuid)? {
            return Err(not_found());
        }
        ready.start(JSON, Vec::new());
        feed.write_event(&uuid, out)?;
        Ok(())
    })
    .await
}

/// Announces the response before the first byte: once called, the status
/// is 200 and what goes wrong later cuts the body short instead.
pub(super) struct Ready(Option<oneshot::Sender<Result<Head, HttpError>>>);

/// The status line's content: media type and extra headers.
type Head = (&'static str, Vec<(HeaderName, String)>);

impl Ready {
    /// The response starts: 200 with this media type and headers.
    pub fn start(&mut self, media_type: &'static str, headers: Vec<(HeaderName, String)>) {
        if let Some(sender) = self.0.take() {
            let _ = sender.send(Ok((media_type, headers)));
        }
    }
}

/// Runs `work` on the blocking pool (it reads the store and may take a
/// while) and streams what it writes, with the export's back-pressure: the
/// work waits while the client is slow. An error before `Ready::start` is
/// the response; after it, the body ends early and the client sees a
/// truncated transfer rather than a complete-looking file.
pub(super) async fn streamed(
    node: Arc<Node>,
    work: impl FnOnce(&Node, &mut Ready, &mut dyn Write) -> Result<(), HttpError> + Send + 'static,
) -> Result<Response, HttpError> {
    let (pieces, received) = mpsc::channel(EXPORT_CHUNKS_IN_FLIGHT);
    let (head, started) = oneshot::channel();
    tokio::task::spawn_blocking(move || {
        let mut ready = Ready(Some(head));
        let mut sink = ChannelSink::new(pieces.clone());
        let result = work(&node, &mut ready, &mut sink)
            .and_then(|()| sink.flush().map_err(|e| HttpError::Internal(format!("the client went away: {e}"))));
        match (ready.0.take(), result) {
            (Some(head), Err(error)) => {
                let _ = head.send(Err(error));
            }
            (Some(head), Ok(())) => {
                let _ = head.send(Err(HttpError::Internal("the response was never started".to_string())));
            }
            (None, Ok(())) => {
                let _ = pieces.blocking_send(Piece::Done(Default::default()));
            }
            (None, Err(error)) => {
                tracing::warn!(reason = %error, "http response cut short");
                let _ = pieces.blocking_send(Piece::Failed(InteropError::Feed(error.to_string())));
            }
        }
    });
    let (media_type, headers) =
        started.await.map_err(|_| HttpError::Internal("the request's worker stopped".to_string()))??;
    let body = tokio_stream::wrappers::ReceiverStream::new(received).filter_map(|piece| async move {
        match piece {
            Piece::Data { data, .. } => Some(Ok(Bytes::from(data))),
            Piece::Done(_) => None,
            Piece::Failed(error) => Some(Err(std::io::Error::other(error.to_string()))),
        }
    });
    let mut response = Response::new(Body::from_stream(body));
    *response.status_mut() = StatusCode::OK;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(media_type));
    for (name, value) in headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, value);
        }
    }
    Ok(response)
}
