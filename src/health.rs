//! `grpc.health.v1.Health` on both listeners, for load balancers and
//! orchestrators: NOT_SERVING until the node is ready, SERVING while it is,
//! and NOT_SERVING again from the moment it starts stopping. Watch streams
//! end once the node stops, so an open watch never holds a stopping node up.

use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::watch;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

/// How ready a node is to answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// Opening its store, rebuilding its indexes, binding its listeners.
    Starting,
    /// Every service answers.
    Serving,
    /// Winding down: in-flight work finishes, new work should go elsewhere.
    Stopping,
}

/// Where the server says how ready the node is; each listener's health
/// service reads it.
#[derive(Clone, Debug)]
pub struct HealthState(Arc<watch::Sender<Readiness>>);

impl Default for HealthState {
    fn default() -> Self {
        HealthState(Arc::new(watch::channel(Readiness::Starting).0))
    }
}

impl HealthState {
    /// A node that is starting.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves the node to `readiness`; health watchers hear of it at once.
    pub fn set(&self, readiness: Readiness) {
        self.0.send_replace(readiness);
    }

    /// The node's readiness now.
    pub fn get(&self) -> Readiness {
        *self.0.borrow()
    }

    /// The health service of a listener serving `service` (its full gRPC
    /// name). It also answers for "", the server as a whole.
    pub fn service(&self, service: &'static str) -> HealthServer<NodeHealth> {
        HealthServer::new(NodeHealth { readiness: self.0.subscribe(), service })
    }
}

/// `grpc.health.v1.Health` for one listener.
#[derive(Debug)]
pub struct NodeHealth {
    readiness: watch::Receiver<Readiness>,
    /// The one service this listener serves besides health (and reflection).
    service: &'static str,
}

impl NodeHealth {
    fn knows(&self, service: &str) -> bool {
        service.is_empty() || service == self.service
    }
}

fn serving_status(readiness: Readiness) -> ServingStatus {
    match readiness {
        Readiness::Serving => ServingStatus::Serving,
        Readiness::Starting | Readiness::Stopping => ServingStatus::NotServing,
    }
}

fn response(status: ServingStatus) -> HealthCheckResponse {
    HealthCheckResponse { status: status as i32 }
}

type WatchReplies = Pin<Box<dyn Stream<Item = Result<HealthCheckResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Health for NodeHealth {
    async fn check(&self, request: Request<HealthCheckRequest>) -> Result<Response<HealthCheckResponse>, Status> {
        let service = &request.get_ref().service;
        if !self.knows(service) {
            return Err(Status::not_found(format!("service '{service}' is not served on this listener")));
        }
        Ok(Response::new(response(serving_status(*self.readiness.borrow()))))
    }

    type WatchStream = WatchReplies;

    /// Sends the status now and on every change, as the protocol asks (an
    /// unknown service gets SERVICE_UNKNOWN), and ends once the node stops.
    async fn watch(&self, request: Request<HealthCheckRequest>) -> Result<Response<WatchReplies>, Status> {
        let known = self.knows(&request.get_ref().service);
        let start = (self.readiness.clone(), None);
        let updates = futures::stream::unfold(start, move |(mut readiness, last)| async move {
            loop {
                let now = *readiness.borrow_and_update();
                let status = if known { serving_status(now) } else { ServingStatus::ServiceUnknown };
                if last != Some(status) {
                    return Some((Ok(response(status)), (readiness, Some(status))));
                }
                if now == Readiness::Stopping || readiness.changed().await.is_err() {
                    return None;
                }
            }
        });
        Ok(Response::new(Box::pin(updates)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_stream::StreamExt;

    fn request(service: &str) -> Request<HealthCheckRequest> {
        Request::new(HealthCheckRequest { service: service.into() })
    }

    async fn check(health: &NodeHealth, service: &str) -> Result<i32, tonic::Code> {
        health.check(request(service)).await.map(|r| r.into_inner().status).map_err(|s| s.code())
    }

    #[tokio::test]
    async fn check_follows_the_node_from_starting_to_stopping() {
        let state = HealthState::new();
        let health = NodeHealth { readiness: state.0.subscribe(), service: "cirfed.v1.Node" };
        assert_eq!(check(&health, "").await, Ok(ServingStatus::NotServing as i32));
        state.set(Readiness::Serving);
        assert_eq!(check(&health, "cirfed.v1.Node").await, Ok(ServingStatus::Serving as i32));
        state.set(Readiness::Stopping);
        assert_eq!(check(&health, "").await, Ok(ServingStatus::NotServing as i32));
        assert_eq!(check(&health, "cirfed.v1.Federation").await, Err(tonic::Code::NotFound));
    }

    #[tokio::test]
    async fn watch_reports_each_change_and_ends_when_the_node_stops() {
        let state = HealthState::new();
        let health = NodeHealth { readiness: state.0.subscribe(), service: "cirfed.v1.Node" };
        let mut updates = health.watch(request("")).await.unwrap().into_inner();
        let status = |update: Option<Result<HealthCheckResponse, Status>>| update.map(|r| r.unwrap().status);
        assert_eq!(status(updates.next().await), Some(ServingStatus::NotServing as i32));
        state.set(Readiness::Serving);
        assert_eq!(status(updates.next().await), Some(ServingStatus::Serving as i32));
        state.set(Readiness::Stopping);
        assert_eq!(status(updates.next().await), Some(ServingStatus::NotServing as i32));
        assert_eq!(status(updates.next().await), None);
    }
}
