//! `/blocklist/{form}`: a blocklist regenerated from the live engine on each
//! request, for firewalls, IDS and resolvers that poll a URL (PAN-OS and
//! FortiOS external dynamic lists, Suricata datasets, nftables, RPZ).
//!
//! Query parameters narrow it: `type`, `category` (repeatable or
//! comma-separated), `min_level`, `min_score`, `tlp` (the most permissive
//! marking included). Every response says what it holds and when it was
//! made in `X-Cirfed-Blocklist`, also for forms whose syntax has no comments.

use super::auth::{Caller, Scope};
use super::error::HttpError;
use super::misp_feed::streamed;
use super::HttpState;
use crate::cir::{Category, Tlp};
use crate::interop::blocklist::{Blocklist, Form};
use crate::interop::Filter;
use crate::node::unix_now;
use crate::normalize::ObservableType;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::HeaderName;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use std::sync::Arc;

/// The header describing a blocklist: contents, filter, generation time.
pub const DESCRIPTION_HEADER: HeaderName = HeaderName::from_static("x-cirfed-blocklist");

type Shared = Arc<HttpState>;

/// The blocklist route.
pub fn routes() -> Router<Shared> {
    Router::new().route("/blocklist/{form}", get(blocklist))
}

async fn blocklist(
    State(state): State<Shared>,
    caller: Caller,
    Path(form): Path<String>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, HttpError> {
    caller.require_read(&Scope::Blocklist)?;
    let form: Form = form.parse().map_err(|e: crate::interop::InteropError| HttpError::NotFound(e.to_string()))?;
    let Query(params) = query.map_err(|e| HttpError::BadRequest(format!("query string: {e}")))?;
    let filter = filter_of(&params)?;
    streamed(state.node.clone(), move |node, ready, out| {
        let list = Blocklist::build(node, form, &filter, unix_now())?;
        ready.start(form.media_type(), vec![(DESCRIPTION_HEADER, list.description())]);
        Ok(list.write(out)?)
    })
    .await
}

/// The filter the query string asks for; an unknown parameter or value is
/// refused by name rather than ignored, so a typo cannot widen a list.
pub fn filter_of(params: &[(String, String)]) -> Result<Filter, HttpError> {
    let bad = |name: &str, reason: String| HttpError::BadRequest(format!("query parameter {name}: {reason}"));
    let mut filter = Filter::default();
    for (name, value) in params {
        let values = || value.split(',').map(str::trim).filter(|v| !v.is_empty());
        match name.as_str() {
            "type" => {
                for v in values() {
                    filter.types.push(v.parse::<ObservableType>().map_err(|e| bad(name, e.to_string()))?);
                }
            }
            "category" => {
                for v in values() {
                    let category = v.parse::<Category>().map_err(|e| bad(name, e.to_string()))?;
                    filter.categories |= 1u32.checked_shl(category.code() as u32).unwrap_or(0);
                }
            }
            "min_level" => {
                filter.min_level = number(value, 1, 5).ok_or_else(|| bad(name, format!("{value:?} is not 1 to 5")))?
            }
            "min_score" => {
                filter.min_score =
                    number(value, 0, 100).ok_or_else(|| bad(name, format!("{value:?} is not 0 to 100")))?
            }
            "tlp" => match value.parse::<Tlp>().map_err(|e| bad(name, e.to_string()))? {
                Tlp::Red => return Err(bad(name, "TLP:RED records never leave the node".to_string())),
                tlp => filter.max_tlp = Some(tlp),
            },
            other => {
                return Err(HttpError::BadRequest(format!(
                    "unknown query parameter {other:?}: expected type, category, min_level, min_score or tlp"
                )))
            }
        }
    }
    Ok(filter)
}

fn number(text: &str, min: u8, max: u8) -> Option<u8> {
    text.trim().parse::<u8>().ok().filter(|n| (min..=max).contains(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn query_parameters_become_the_filter() {
        let filter = filter_of(&params(&[
            ("type", "ipv4,cidr"),
            ("type", "domain"),
            ("category", "malware"),
            ("min_level", "3"),
            ("min_score", "60"),
            ("tlp", "green"),
        ]))
        .unwrap();
        assert_eq!(filter.types, [ObservableType::Ipv4, ObservableType::Cidr, ObservableType::Domain]);
        assert_eq!(filter.categories, 1 << Category::Malware.code());
        assert_eq!((filter.min_level, filter.min_score, filter.max_tlp), (3, 60, Some(Tlp::Green)));
    }

    #[test]
    fn bad_query_parameters_are_refused_by_name() {
        for (pairs, needle) in [
            (vec![("typ", "ipv4")], "unknown query parameter \"typ\""),
            (vec![("type", "ipv5")], "query parameter type"),
            (vec![("min_level", "9")], "not 1 to 5"),
            (vec![("min_score", "101")], "not 0 to 100"),
            (vec![("tlp", "red")], "never leave"),
            (vec![("category", "weather")], "query parameter category"),
        ] {
            let error = filter_of(&params(&pairs)).unwrap_err().to_string();
            assert!(error.contains(needle), "{pairs:?}: {error}");
        }
    }
}
