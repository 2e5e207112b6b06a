//! TAXII 2.1 endpoints: discovery, one API root, the collections, their
//! objects, manifest and versions, and status. Paths answer with and without
//! their trailing slash (clients differ); every response is in the TAXII
//! media type, as taxii2-client checks.

use super::auth::{Caller, Scope};
use super::error::HttpError;
use super::HttpState;
use crate::interop::taxii::{
    self, decode_cursor, encode_cursor, format_micros, Admission, Collection, Listed, Page, Query, COLLECTIONS,
    STIX_MEDIA_TYPE, TAXII_MEDIA_TYPE,
};
use crate::interop::FeedRecord;
use crate::node::{unix_now, Node};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query as QueryParams, State};
use axum::http::header::{ACCEPT, CONTENT_TYPE, HOST};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, MethodRouter};
use axum::Router;
use serde_json::json;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// The API root's path.
pub const API_ROOT: &str = "/cirfed/";
/// Status resources kept for clients to poll; the oldest go first.
pub const MAX_STATUS_RESOURCES: usize = 1_000;

const DATE_ADDED_FIRST: HeaderName = HeaderName::from_static("x-taxii-date-added-first");
const DATE_ADDED_LAST: HeaderName = HeaderName::from_static("x-taxii-date-added-last");

type Shared = Arc<HttpState>;
type Params = Result<QueryParams<Vec<(String, String)>>, QueryRejection>;

/// The TAXII routes.
pub fn routes() -> Router<Shared> {
    let routes: [(&str, MethodRouter<Shared>); 9] = [
        ("/taxii2/", get(discovery)),
        ("/cirfed/", get(api_root)),
        ("/cirfed/collections/", get(collections)),
        ("/cirfed/collections/{collection}/", get(collection)),
        ("/cirfed/collections/{collection}/objects/", get(objects).post(super::add::add_objects)),
        ("/cirfed/collections/{collection}/objects/{object}/", get(object)),
        ("/cirfed/collections/{collection}/objects/{object}/versions/", get(versions)),
        ("/cirfed/collections/{collection}/manifest/", get(manifest)),
        ("/cirfed/status/{status}/", get(status)),
    ];
    routes.into_iter().fold(Router::new(), |router, (path, handler)| {
        router.route(path, handler.clone()).route(path.trim_end_matches('/'), handler)
    })
}

/// Refuses a request whose Accept names no TAXII 2.1 media type.
pub(super) fn check_accept(headers: &HeaderMap) -> Result<(), HttpError> {
    let wanted = format!("send Accept: {TAXII_MEDIA_TYPE}");
    let accept = headers.get(ACCEPT).ok_or_else(|| HttpError::NotAcceptable(format!("no Accept header: {wanted}")))?;
    let accept = accept.to_str().map_err(|_| HttpError::NotAcceptable(wanted.clone()))?;
    let served = accept.split(',').any(|range| {
        let mut parts = range.split(';').map(|p| p.trim().to_ascii_lowercase());
        let media = parts.next().unwrap_or_default();
        let version_ok = parts.all(|p| !p.starts_with("version=") || p == "version=2.1");
        matches!(media.as_str(), "application/taxii+json" | "application/*" | "*/*") && version_ok
    });
    match served {
        true => Ok(()),
        false => Err(HttpError::NotAcceptable(format!("Accept {accept:?} names no media type served here: {wanted}"))),
    }
}

pub(super) fn taxii_response(status: StatusCode, body: String, headers: Vec<(HeaderName, String)>) -> Response {
    let mut response = (status, [(CONTENT_TYPE, TAXII_MEDIA_TYPE)], body).into_response();
    for (name, value) in headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

fn ok_json(value: serde_json::Value) -> Response {
    taxii_response(StatusCode::OK, value.to_string(), Vec::new())
}

/// Runs feed reads on the blocking pool: they touch RocksDB.
async fn blocking<T: Send + 'static>(
    state: &Shared,
    work: impl FnOnce(&HttpState) -> Result<T, HttpError> + Send + 'static,
) -> Result<T, HttpError> {
    let state = state.clone();
    tokio::task::spawn_blocking(move || work(&state))
        .await
        .map_err(|e| HttpError::Internal(format!("request interrupted: {e}")))?
}

pub(super) fn find_collection(id: &str) -> Result<&'static Collection, HttpError> {
    Collection::find(id).ok_or_else(|| HttpError::NotFound(format!("no collection {id:?} on this node")))
}

fn scope_of(collection: &Collection) -> Scope {
    Scope::Collection(collection.alias.to_string())
}

fn params(params: Params) -> Result<Vec<(String, String)>, HttpError> {
    params.map(|QueryParams(p)| p).map_err(|e| HttpError::BadRequest(format!("query string: {e}")))
}

async fn discovery(State(state): State<Shared>, _: Caller, headers: HeaderMap) -> Result<Response, HttpError> {
    check_accept(&headers)?;
    let scheme = if state.tls { "https" } else { "http" };
    let host = headers.get(HOST).and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1");
    let root = format!("{scheme}://{host}{API_ROOT}");
    Ok(ok_json(json!({
        "title": "cirfed federation node",
        "description": "The federation's shared incident feed (indicators, lessons learned, sightings) as STIX 2.1.",
        "default": root,
        "api_roots": [root],
    })))
}

async fn api_root(State(state): State<Shared>, _: Caller, headers: HeaderMap) -> Result<Response, HttpError> {
    check_accept(&headers)?;
    Ok(ok_json(json!({
        "title": "cirfed",
        "description": "Collections of this node's feed, one per audience.",
        "versions": [TAXII_MEDIA_TYPE],
        "max_content_length": state.limits.max_content_length,
    })))
}

fn collection_resource(collection: &Collection, caller: &Caller) -> serde_json::Value {
    let scope = scope_of(collection);
    json!({
        "id": collection.id(),
        "title": collection.title,
        "description": collection.description,
        "alias": collection.alias,
        "can_read": caller.0.may_read(&scope),
        "can_write": caller.0.may_write(&scope),
        "media_types": [STIX_MEDIA_TYPE],
    })
}

async fn collections(caller: Caller, headers: HeaderMap) -> Result<Response, HttpError> {
    check_accept(&headers)?;
    let visible: Vec<_> = COLLECTIONS
        .iter()
        .filter(|c| caller.0.may_read(&scope_of(c)) || caller.0.may_write(&scope_of(c)))
        .map(|c| collection_resource(c, &caller))
        .collect();
    Ok(ok_json(if visible.is_empty() { json!({}) } else { json!({ "collections": visible }) }))
}

async fn collection(caller: Caller, headers: HeaderMap, Path(id): Path<String>) -> Result<Response, HttpError> {
    check_accept(&headers)?;
    let collection = find_collection(&id)?;
    let scope = scope_of(collection);
    if !caller.0.may_read(&scope) && !caller.0.may_write(&scope) {
        return Err(HttpError::Forbidden(format!(
            "user {:?} may not see collection {}",
            caller.0.name, collection.alias
        )));
    }
    Ok(ok_json(collection_resource(collection, &caller)))
}

/// What a collection lists of the feed: its TLPs, and for indicators what
/// the node's accept policy and warninglists let through.
struct Audience<'a> {
    collection: &'a Collection,
    node: &'a Node,
    now: i64,
}

impl Admission for Audience<'_> {
    fn admits(&self, record: &FeedRecord) -> bool {
        self.collection.admits(record.tlp()) && self.node.reports(record, self.now)
    }
}

/// A checked listing request: the collection, the query and where it resumes.
/// With `next`, the filters are the cursor's: a client may send them again
/// or leave them out. A re-sent `added_after` that differs is ignored (the
/// cursor is past it, so nothing is lost); other `match[...]` filters than
/// the cursor's are refused, since they would change the listing mid-way.
fn listing_request(
    state: &HttpState,
    caller: &Caller,
    id: &str,
    params: Vec<(String, String)>,
) -> Result<(&'static Collection, Query, Option<taxii::Position>), HttpError> {
    let collection = find_collection(id)?;
    caller.require_read(&scope_of(collection))?;
    let asked = Query::parse(&params, state.limits.max_page_size)?;
    let Some(next) = &asked.next else { return Ok((collection, asked, None)) };
    let cursor = decode_cursor(&state.cursor_key, next)?;
    if cursor.collection != collection.alias {
        return Err(HttpError::BadRequest(format!("next: the cursor belongs to collection {}", cursor.collection)));
    }
    let mut resumed = cursor.filters.clone();
    resumed.push(("limit".into(), asked.limit.to_string()));
    let query = Query::parse(&resumed, state.limits.max_page_size)?;
    if asked.has_matches() && !asked.same_matches(&query) {
        return Err(HttpError::BadRequest(
            "next: the cursor belongs to other match[...] filters; send the first page's filters, or none".into(),
        ));
    }
    Ok((collection, query, Some(cursor.position)))
}

fn page_of(
    state: &HttpState,
    collection: &'static Collection,
    query: &Query,
    from: Option<taxii::Position>,
) -> Result<(Page, Option<String>), HttpError> {
    let audience = Audience { collection, node: &state.node, now: unix_now() };
    let page = taxii::list(state.node.as_ref(), &audience, query, from)?;
    let next = page.next.map(|position| {
        let cursor =
            taxii::Cursor { position, collection: collection.alias.to_string(), filters: query.filter_params.clone() };
        encode_cursor(&state.cursor_key, &cursor)
    });
    Ok((page, next))
}

fn date_headers(objects: &[Listed]) -> Vec<(HeaderName, String)> {
    match (objects.first(), objects.last()) {
        (Some(first), Some(last)) => {
            vec![(DATE_ADDED_FIRST, format_micros(first.date_added)), (DATE_ADDED_LAST, format_micros(last.date_added))]
        }
        _ => Vec::new(),
    }
}

/// `{"more": .., "next": .., "objects": [..]}`, written from each object's
/// JSON without parsing it again.
fn envelope(objects: &[Listed], next: Option<&str>) -> String {
    let size: usize = objects.iter().map(|o| o.object.json.len() + 1).sum();
    let mut body = String::with_capacity(size + 128);
    body.push_str(if next.is_some() { "{\"more\":true" } else { "{\"more\":false" });
    if let Some(next) = next {
        body.push_str(",\"next\":");
        body.push_str(&serde_json::Value::from(next).to_string());
    }
    if !objects.is_empty() {
        body.push_str(",\"objects\":[");
        for (n, listed) in objects.iter().enumerate() {
            if n > 0 {
                body.push(',');
            }
            body.push_str(&listed.object.json);
        }
        body.push(']');
    }
    body.push('}');
    body
}

async fn objects(
    State(state): State<Shared>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    query: Params,
) -> Result<Response, HttpError> {
    listed_page(state, caller, headers, id, query, |page, next| envelope(&page.objects, next)).await
}

async fn manifest(
    State(state): State<Shared>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    query: Params,
) -> Result<Response, HttpError> {
    listed_page(state, caller, headers, id, query, manifest_body).await
}

/// One page of a collection's listing, written by `render` (the objects
/// envelope or the manifest), with the date headers of its objects.
async fn listed_page(
    state: Shared,
    caller: Caller,
    headers: HeaderMap,
    id: String,
    query: Params,
    render: fn(&Page, Option<&str>) -> String,
) -> Result<Response, HttpError> {
    check_accept(&headers)?;
    let params = params(query)?;
    blocking(&state, move |state| {
        let (collection, query, from) = listing_request(state, &caller, &id, params)?;
        let (page, next) = page_of(state, collection, &query, from)?;
        Ok(taxii_response(StatusCode::OK, render(&page, next.as_deref()), date_headers(&page.objects)))
    })
    .await
}

/// `{"more": .., "next": .., "objects": [manifest entries]}`.
fn manifest_body(page: &Page, next: Option<&str>) -> String {
    let entries: Vec<_> = page
        .objects
        .iter()
        .map(|listed| {
            json!({
                "id": listed.object.id,
                "date_added": format_micros(listed.date_added),
                "version": listed.object.version,
                "media_type": STIX_MEDIA_TYPE,
            })
        })
        .collect();
    let mut body = json!({ "more": next.is_some() });
    if let Some(next) = next {
        body["next"] = next.into();
    }
    if !entries.is_empty() {
        body["objects"] = entries.into();
    }
    body.to_string()
}

/// Every version of one object the query selects, checked for the caller.
fn object_listing(
    state: &HttpState,
    caller: &Caller,
    id: &str,
    object_id: &str,
    params: Vec<(String, String)>,
    all_versions: bool,
) -> Result<Vec<Listed>, HttpError> {
    let (collection, mut query, _) = listing_request(state, caller, id, params)?;
    if all_versions {
        query.versions = taxii::Versions { all: true, ..Default::default() };
    }
    let audience = Audience { collection, node: &state.node, now: unix_now() };
    let mut found = taxii::object_versions(state.node.as_ref(), &audience, &query, object_id)?;
    if found.is_empty() {
        return Err(HttpError::NotFound(format!("no object {object_id:?} in collection {}", collection.alias)));
    }
    if let Some(after) = query.added_after {
        found.retain(|listed| listed.date_added > after);
    }
    found.truncate(query.limit);
    Ok(found)
}

async fn object(
    State(state): State<Shared>,
    caller: Caller,
    headers: HeaderMap,
    Path((id, object_id)): Path<(String, String)>,
    query: Params,
) -> Result<Response, HttpError> {
    check_accept(&headers)?;
    let params = params(query)?;
    blocking(&state, move |state| {
        let found = object_listing(state, &caller, &id, &object_id, params, false)?;
        Ok(taxii_response(StatusCode::OK, envelope(&found, None), date_headers(&found)))
    })
    .await
}

async fn versions(
    State(state): State<Shared>,
    caller: Caller,
    headers: HeaderMap,
    Path((id, object_id)): Path<(String, String)>,
    query: Params,
) -> Result<Response, HttpError> {
    check_accept(&headers)?;
    let params = params(query)?;
    blocking(&state, move |state| {
        let found = object_listing(state, &caller, &id, &object_id, params, true)?;
        let versions: Vec<&str> = found.iter().map(|listed| listed.object.version.as_str()).collect();
        let body = json!({ "more": false, "versions": versions });
        Ok(taxii_response(StatusCode::OK, body.to_string(), date_headers(&found)))
    })
    .await
}

async fn status(
    State(state): State<Shared>,
    _: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, HttpError> {
    check_accept(&headers)?;
    let book = state.statuses.lock().expect("status book lock");
    match book.get(&id) {
        Some(body) => Ok(taxii_response(StatusCode::OK, body.to_string(), Vec::new())),
        None => Err(HttpError::NotFound(format!(
            "no status {id:?} (statuses are kept for the last {MAX_STATUS_RESOURCES} requests)"
        ))),
    }
}

/// Status resources of recent POSTs, by id, oldest dropped first.
#[derive(Default)]
pub struct StatusBook {
    order: VecDeque<String>,
    by_id: HashMap<String, String>,
}

impl StatusBook {
    /// Keeps a status resource (its JSON) under `id`.
    pub fn add(&mut self, id: String, body: String) {
        if self.order.len() == MAX_STATUS_RESOURCES {
            if let Some(oldest) = self.order.pop_front() {
                self.by_id.remove(&oldest);
            }
        }
        self.order.push_back(id.clone());
        self.by_id.insert(id, body);
    }

    /// The status resource with this id.
    pub fn get(&self, id: &str) -> Option<&str> {
        self.by_id.get(id).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: Option<&str>) -> Result<(), HttpError> {
        let mut headers = HeaderMap::new();
        if let Some(value) = value {
            headers.insert(ACCEPT, HeaderValue::from_str(value).unwrap());
        }
        check_accept(&headers)
    }

    #[test]
    fn accept_must_name_taxii_2_1() {
        assert!(accept(Some(TAXII_MEDIA_TYPE)).is_ok());
        assert!(accept(Some("application/taxii+json; version=2.1")).is_ok());
        assert!(accept(Some("application/taxii+json")).is_ok());
        assert!(accept(Some("*/*")).is_ok());
        assert!(matches!(accept(None), Err(HttpError::NotAcceptable(_))));
        assert!(matches!(accept(Some("application/taxii+json;version=2.0")), Err(HttpError::NotAcceptable(_))));
        assert!(matches!(accept(Some("text/html")), Err(HttpError::NotAcceptable(_))));
    }

    #[test]
    fn the_status_book_keeps_the_newest() {
        let mut book = StatusBook::default();
        for n in 0..=MAX_STATUS_RESOURCES {
            book.add(n.to_string(), format!("{{\"n\":{n}}}"));
        }
        assert!(book.get("0").is_none());
        assert!(book.get("1").is_some());
        assert!(book.get(&MAX_STATUS_RESOURCES.to_string()).is_some());
    }

    #[test]
    fn an_envelope_always_has_next_when_more_is_true() {
        assert_eq!(envelope(&[], None), "{\"more\":false}");
        assert_eq!(envelope(&[], Some("abc")), "{\"more\":true,\"next\":\"abc\"}");
    }
}
