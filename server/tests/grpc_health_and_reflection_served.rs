//! The region server's gRPC port serves the standard health service (SERVING while up,
//! NOT_SERVING announced to watchers at shutdown) and server reflection, v1 and v1alpha,
//! each listing every service on the port, checked with the real tonic-health and
//! tonic-reflection clients.

use std::net::SocketAddr;
use std::time::Duration;

use speedlayer_server::{RegionConfig, RegionServer};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1::{ServerReflectionRequest, ServerReflectionResponse};
use tonic_reflection::pb::v1alpha as alpha;

/// Every service the gRPC port carries, sorted: what both reflection versions must list.
const ALL_SERVICES: [&str; 5] = [
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
    "speedlayer.v1.Admin",
    "speedlayer.v1.Data",
];

async fn start(dir: &std::path::Path) -> RegionServer {
    let mut cfg = RegionConfig::new(dir.join("regions"));
    cfg.grpc_addr = SocketAddr::from(([127, 0, 0, 1], 0));
    cfg.http_addr = SocketAddr::from(([127, 0, 0, 1], 0));
    RegionServer::start(cfg).await.unwrap()
}

async fn channel(server: &RegionServer) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{}", server.grpc_addr()))
        .unwrap()
        .connect_timeout(Duration::from_secs(10))
        .connect()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_check_serving_then_not_serving_at_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let mut health = HealthClient::new(channel(&server).await);
    for service in ["", "speedlayer.v1.Admin", "speedlayer.v1.Data"] {
        let resp = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(resp.status(), ServingStatus::Serving, "service {service:?}");
    }
    let unknown = health
        .check(HealthCheckRequest {
            service: "no.such.Service".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);

    // A watcher of the Data service sees SERVING, then NOT_SERVING when shutdown begins.
    let mut watch = health
        .watch(HealthCheckRequest {
            service: "speedlayer.v1.Data".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let first: HealthCheckResponse = watch.message().await.unwrap().unwrap();
    assert_eq!(first.status(), ServingStatus::Serving);
    let stopping = tokio::spawn(server.shutdown());
    let next = tokio::time::timeout(Duration::from_secs(30), watch.message())
        .await
        .expect("a health update within 30 s");
    match next {
        // The update arrived before the connection closed.
        Ok(Some(update)) => assert_eq!(update.status(), ServingStatus::NotServing),
        other => panic!("expected NOT_SERVING, got {other:?}"),
    }
    // An open Watch stream is an in-flight request: end it so shutdown can finish.
    drop(watch);
    drop(health);
    stopping.await.unwrap().unwrap();
}

async fn reflect(
    client: &mut ServerReflectionClient<tonic::transport::Channel>,
    req: MessageRequest,
) -> ServerReflectionResponse {
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(req),
    };
    let mut stream = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    stream.message().await.unwrap().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_v1_lists_every_service_and_describes_the_speedlayer_ones() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let mut client = ServerReflectionClient::new(channel(&server).await);

    let resp = reflect(&mut client, MessageRequest::ListServices(String::new())).await;
    let Some(MessageResponse::ListServicesResponse(list)) = resp.message_response else {
        panic!("unexpected reflection answer: {resp:?}");
    };
    let mut names: Vec<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ALL_SERVICES);

    // What grpcurl asks next: the file that defines a service.
    let resp = reflect(
        &mut client,
        MessageRequest::FileContainingSymbol("speedlayer.v1.Data".into()),
    )
    .await;
    let Some(MessageResponse::FileDescriptorResponse(files)) = resp.message_response else {
        panic!("unexpected reflection answer: {resp:?}");
    };
    assert!(!files.file_descriptor_proto.is_empty());
    let text = String::from_utf8_lossy(&files.file_descriptor_proto[0]);
    assert!(text.contains("Mutate") && text.contains("Scan"), "{text}");

    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_v1alpha_lists_every_service_and_describes_health() {
    use alpha::server_reflection_request::MessageRequest;
    use alpha::server_reflection_response::MessageResponse;

    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let mut client =
        alpha::server_reflection_client::ServerReflectionClient::new(channel(&server).await);
    let mut ask = async |req: MessageRequest| {
        let request = alpha::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(req),
        };
        let mut stream = client
            .server_reflection_info(tokio_stream::iter([request]))
            .await
            .unwrap()
            .into_inner();
        stream.message().await.unwrap().unwrap().message_response
    };

    let Some(MessageResponse::ListServicesResponse(list)) =
        ask(MessageRequest::ListServices(String::new())).await
    else {
        panic!("v1alpha did not answer ListServices");
    };
    let mut names: Vec<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ALL_SERVICES);

    // The health service's file, which `grpcurl ... grpc.health.v1.Health/Check` needs.
    let Some(MessageResponse::FileDescriptorResponse(files)) = ask(
        MessageRequest::FileContainingSymbol("grpc.health.v1.Health".into()),
    )
    .await
    else {
        panic!("v1alpha did not answer FileContainingSymbol");
    };
    let text = String::from_utf8_lossy(&files.file_descriptor_proto[0]);
    assert!(
        text.contains("HealthCheckRequest") && text.contains("Watch"),
        "{text}"
    );

    server.shutdown().await.unwrap();
}
