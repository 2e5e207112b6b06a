//! TAXII "Add Objects": STIX objects POSTed to a writable collection are
//! published through the same scrub-sign-validate path as `cirfed publish`,
//! and the status resource says, object by object, what became of each.
//!
//! The work is done before the reply, so the status is `complete` at once;
//! it is kept for clients that poll it anyway (taxii2-client does).

use super::auth::{Caller, Scope};
use super::error::HttpError;
use super::taxii::{check_accept, find_collection, taxii_response};
use super::HttpState;
use crate::interop::stix::{self, ImportAction};
use crate::interop::taxii::{format_micros, Collection, TAXII_MEDIA_TYPE};
use crate::node::{unix_now, MAX_BATCH_RECORDS};
use crate::proto::Draft;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};
use std::sync::Arc;

/// POST `{root}/collections/{id}/objects/`.
pub async fn add_objects(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, HttpError> {
    check_accept(&headers)?;
    check_content_type(&headers)?;
    let collection = find_collection(&id)?;
    caller.require_write(&Scope::Collection(collection.alias.to_string()))?;
    let body = body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => HttpError::TooLarge { limit: state.limits.max_content_length },
        _ => HttpError::BadRequest(format!("cannot read the request body: {rejection}")),
    })?;
    let objects = envelope_objects(&body)?;
    let worker = state.clone();
    let status = tokio::task::spawn_blocking(move || add(&worker, collection, objects))
        .await
        .map_err(|e| HttpError::Internal(format!("request interrupted: {e}")))?;
    let body = status.to_string();
    let status_id = status["id"].as_str().expect("status has an id").to_string();
    state.statuses.lock().expect("status book lock").add(status_id, body.clone());
    Ok(taxii_response(StatusCode::ACCEPTED, body, Vec::new()))
}

fn check_content_type(headers: &HeaderMap) -> Result<(), HttpError> {
    let given = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let mut parts = given.split(';').map(|p| p.trim().to_ascii_lowercase());
    let media = parts.next().unwrap_or_default();
    let version_ok = parts.all(|p| !p.starts_with("version=") || p == "version=2.1");
    match media == "application/taxii+json" && version_ok {
        true => Ok(()),
        false => Err(HttpError::UnsupportedMediaType(format!(
            "Content-Type {given:?} is not {TAXII_MEDIA_TYPE}: POST a TAXII envelope"
        ))),
    }
}

/// The `objects` of a TAXII envelope.
fn envelope_objects(body: &[u8]) -> Result<Vec<Value>, HttpError> {
    let envelope: Value =
        serde_json::from_slice(body).map_err(|e| HttpError::BadRequest(format!("the body is not JSON: {e}")))?;
    let Some(objects) = envelope.get("objects").and_then(Value::as_array) else {
        return Err(HttpError::BadRequest("the body is not a TAXII envelope: no \"objects\" list".into()));
    };
    if objects.len() > MAX_BATCH_RECORDS {
        return Err(HttpError::BadRequest(format!(
            "{} objects in one request, over the limit of {MAX_BATCH_RECORDS}",
            objects.len()
        )));
    }
    Ok(objects.clone())
}

/// Imports and publishes `objects`; the status resource of the request.
fn add(state: &HttpState, collection: &Collection, objects: Vec<Value>) -> Value {
    let now = unix_now();
    let imports = stix::import_objects(&objects, Some(collection.default_tlp), Some(state.node.as_ref()), now);
    let (mut drafts, mut owners) = (Vec::<Draft>::new(), Vec::<usize>::new());
    let mut verdicts: Vec<Result<&'static str, String>> = Vec::with_capacity(imports.len());
    for (n, import) in imports.iter().enumerate() {
        verdicts.push(match &import.action {
            ImportAction::Context(why) => Ok(why),
            ImportAction::Refuse(error) => Err(error.to_string()),
            ImportAction::Publish(these) => match fits(collection, these) {
                Err(reason) => Err(reason),
                Ok(()) => {
                    drafts.extend(these.iter().cloned());
                    owners.extend(std::iter::repeat_n(n, these.len()));
                    Ok("published")
                }
            },
        });
    }
    for (published, owner) in state.node.publish_reported(drafts).into_iter().zip(owners) {
        if let (Err(error), Ok(_)) = (published.outcome, &verdicts[owner]) {
            verdicts[owner] = Err(format!("{}: {error}", error.code()));
        }
    }
    status_resource(&imports, &verdicts, now)
}

/// Refuses drafts marked above what the collection holds.
fn fits(collection: &Collection, drafts: &[Draft]) -> Result<(), String> {
    for draft in drafts {
        let tlp = crate::cir::Tlp::from_code(draft.tlp).unwrap_or(collection.default_tlp);
        if !collection.admits(tlp) {
            return Err(format!(
                "marked {tlp}, which collection {} does not hold (at most {})",
                collection.alias, collection.max_tlp
            ));
        }
    }
    Ok(())
}

fn status_resource(imports: &[stix::ObjectImport], verdicts: &[Result<&'static str, String>], now: i64) -> Value {
    let entry = |import: &stix::ObjectImport, message: &str| json!({ "id": import.id, "version": import.version, "message": message });
    let successes: Vec<Value> = imports
        .iter()
        .zip(verdicts)
        .filter_map(|(import, verdict)| verdict.as_ref().ok().map(|m| entry(import, m)))
        .collect();
    let failures: Vec<Value> = imports
        .iter()
        .zip(verdicts)
        .filter_map(|(import, verdict)| verdict.as_ref().err().map(|m| entry(import, m)))
        .collect();
    let id = uuid::Builder::from_random_bytes(rand::random()).into_uuid().hyphenated().to_string();
    json!({
        "id": id,
        "status": "complete",
        "request_timestamp": format_micros(now * 1_000_000),
        "total_count": imports.len(),
        "success_count": successes.len(),
        "successes": successes,
        "failure_count": failures.len(),
        "failures": failures,
        "pending_count": 0,
        "pendings": [],
    })
}
