//! grpc.health.v1 on both listeners and server reflection v1 on the local
//! API, through the generated clients that tonic-health and tonic-reflection
//! ship (what a load balancer or grpcurl would use).

mod common;

use cirfed::api::NODE_SERVICE;
use cirfed::federation::FEDERATION_SERVICE;
use common::{TestFederation, TestNode, DEADLINE};
use tokio_stream::StreamExt;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1::ServerReflectionRequest;

/// The fields of a FileDescriptorProto this test reads (prost skips the rest).
#[derive(Clone, PartialEq, prost::Message)]
struct FileDescriptor {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(string, tag = "2")]
    package: String,
    #[prost(message, repeated, tag = "6")]
    service: Vec<ServiceDescriptor>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ServiceDescriptor {
    #[prost(string, tag = "1")]
    name: String,
}

async fn api_channel(node: &TestNode) -> Channel {
    Endpoint::from_shared(format!("http://{}", node.running.api_addr)).unwrap().connect().await.unwrap()
}

/// A channel to `node`'s peer listener, authenticating as the member in `dir`.
async fn peer_channel(node: &TestNode, dir: &std::path::Path) -> Channel {
    let keys = cirfed::identity::load_node(dir).unwrap();
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&keys.admission.federation.ca_cert))
        .domain_name("localhost")
        .identity(Identity::from_pem(&keys.admission.certificate, &keys.tls_key));
    let endpoint = Endpoint::from_shared(format!("https://{}", node.running.federation_addr)).unwrap();
    endpoint.tls_config(tls).unwrap().connect().await.expect("mutual TLS to the peer listener")
}

async fn check(channel: Channel, service: &str) -> Result<i32, tonic::Status> {
    let request = HealthCheckRequest { service: service.into() };
    HealthClient::new(channel).check(request).await.map(|r| r.into_inner().status)
}

#[tokio::test(flavor = "multi_thread")]
async fn both_listeners_answer_serving_once_the_node_is_up() {
    let fed = TestFederation::new();
    let node = TestNode::start(&fed.admit_node("a")).await;
    let member = fed.admit_node("b");
    let api = api_channel(&node).await;
    let peer = peer_channel(&node, &member).await;
    let serving = ServingStatus::Serving as i32;
    assert_eq!(check(api.clone(), "").await.unwrap(), serving);
    assert_eq!(check(api.clone(), NODE_SERVICE).await.unwrap(), serving);
    assert_eq!(check(peer.clone(), "").await.unwrap(), serving);
    assert_eq!(check(peer.clone(), FEDERATION_SERVICE).await.unwrap(), serving);
    // Each listener answers for its own service only.
    assert_eq!(check(api, FEDERATION_SERVICE).await.unwrap_err().code(), tonic::Code::NotFound);
    assert_eq!(check(peer, NODE_SERVICE).await.unwrap_err().code(), tonic::Code::NotFound);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_local_api_says_not_serving_until_the_store_is_open() {
    let fed = TestFederation::new();
    let dir = fed.admit_node("a");
    let starting = cirfed::server::bind_node(&dir, cirfed::server::Overrides::loopback()).await.unwrap();
    let channel = Endpoint::from_shared(format!("http://{}", starting.api_addr)).unwrap().connect().await.unwrap();
    assert_eq!(check(channel.clone(), "").await.unwrap(), ServingStatus::NotServing as i32);
    assert_eq!(check(channel.clone(), NODE_SERVICE).await.unwrap(), ServingStatus::NotServing as i32);
    let mut client = cirfed::proto::node_client::NodeClient::new(channel.clone());
    let status = client.status(cirfed::proto::StatusRequest {}).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert!(!dir.join(cirfed::server::API_ADDR_FILE).exists(), "CLI commands do not find a node that is not ready");

    let running = starting.open().await.expect("the node opens");
    assert_eq!(check(channel.clone(), "").await.unwrap(), ServingStatus::Serving as i32);
    assert!(client.status(cirfed::proto::StatusRequest {}).await.is_ok(), "the same connection now reaches the node");
    running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_peer_listener_answers_health_only_over_mutual_tls() {
    let fed = TestFederation::new();
    let node = TestNode::start(&fed.admit_node("a")).await;
    let plain = Endpoint::from_shared(format!("http://{}", node.running.federation_addr)).unwrap();
    let refused = match plain.connect().await {
        Ok(channel) => check(channel, "").await.is_err(),
        Err(_) => true,
    };
    assert!(refused, "a client without a federation certificate gets no answer");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_health_watch_sees_not_serving_when_the_node_stops_and_then_ends() {
    let fed = TestFederation::new();
    let member = fed.admit_node("b");
    let node = TestNode::start(&fed.admit_node("a")).await;
    let mut watches = Vec::new();
    for channel in [api_channel(&node).await, peer_channel(&node, &member).await] {
        let request = HealthCheckRequest { service: String::new() };
        let mut updates = HealthClient::new(channel).watch(request).await.unwrap().into_inner();
        let first = updates.next().await.expect("a first status").unwrap();
        assert_eq!(first.status, ServingStatus::Serving as i32);
        watches.push(updates);
    }
    // The open watches must not hold the stop up: they end once NOT_SERVING is sent.
    tokio::time::timeout(DEADLINE, node.stop()).await.expect("the node stops with watches open");
    for mut updates in watches {
        let last = updates.next().await.expect("a status on stopping").unwrap();
        assert_eq!(last.status, ServingStatus::NotServing as i32);
        assert!(updates.next().await.is_none_or(|end| end.is_err()), "the watch ends");
    }
}

/// Asks the reflection service one question.
async fn reflect(channel: Channel, request: MessageRequest) -> Result<MessageResponse, tonic::Status> {
    let request = ServerReflectionRequest { host: String::new(), message_request: Some(request) };
    let mut client = ServerReflectionClient::new(channel);
    let mut replies = client.server_reflection_info(tokio_stream::iter(vec![request])).await.unwrap().into_inner();
    let reply = replies.next().await.expect("a reply")?;
    Ok(reply.message_response.expect("a response message"))
}

#[tokio::test(flavor = "multi_thread")]
async fn reflection_lists_the_local_services_and_describes_the_node_api() {
    let fed = TestFederation::new();
    let node = TestNode::start(&fed.admit_node("a")).await;
    let channel = api_channel(&node).await;
    let MessageResponse::ListServicesResponse(list) =
        reflect(channel.clone(), MessageRequest::ListServices(String::new())).await.unwrap()
    else {
        panic!("not a service list");
    };
    let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    assert_eq!(names, ["cirfed.v1.Node", "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"]);

    let symbol = MessageRequest::FileContainingSymbol(NODE_SERVICE.into());
    let MessageResponse::FileDescriptorResponse(files) = reflect(channel.clone(), symbol).await.unwrap() else {
        panic!("not a file descriptor");
    };
    let files: Vec<FileDescriptor> =
        files.file_descriptor_proto.iter().map(|bytes| prost::Message::decode(bytes.as_slice()).unwrap()).collect();
    let node_proto = files.iter().find(|f| f.name == "cirfed/v1/node.proto").expect("node.proto is served");
    assert_eq!(node_proto.package, "cirfed.v1");
    assert_eq!(node_proto.service.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["Node"]);

    let unknown = MessageRequest::FileContainingSymbol("cirfed.v1.NoSuchService".into());
    assert_eq!(reflect(channel, unknown).await.unwrap_err().code(), tonic::Code::NotFound);
    node.stop().await;
}
