//! gRPC through switchyard, end to end: a tonic client talks to switchyard
//! (`h2c: true` listener, or TLS with ALPN h2) and switchyard to a tonic
//! backend (`protocol: h2`, h2c by prior knowledge). What it proves:
//!
//! - unary: the reply, the backend's initial metadata, and its *trailing*
//!   metadata (`x-trailer: yes` next to `grpc-status: 0`) reach the client;
//! - an error status (`NotFound`, message and metadata) reaches the client,
//!   which tonic sends as a trailers-only response;
//! - server streaming: 100 messages arrive in order, then the trailers;
//! - client streaming, and bidirectional streaming in lock step (each
//!   request is sent only after the previous reply arrived, so a proxy that
//!   held the request body until its end would hang and fail the test);
//! - the same unary call over a TLS listener.
//!
//! The protobuf message and the service are written by hand, as `tonic-build`
//! would generate them, so no `protoc` is needed.

mod common;
use common::*;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use futures::StreamExt;
use http_body_util::BodyExt;
use tonic::body::Body;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::codegen::{BoxFuture, Context, Poll, Service};
use tonic::metadata::MetadataMap;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Server};
use tonic::{Code, Request, Response, Status, Streaming};
use tonic_prost::ProstCodec;

/// The one message type of the test service, requests and replies alike.
#[derive(Clone, PartialEq, prost::Message)]
struct Msg {
    #[prost(string, tag = "1")]
    text: String,
    #[prost(uint32, tag = "2")]
    n: u32,
}

fn msg(text: &str, n: u32) -> Msg {
    Msg {
        text: text.to_owned(),
        n,
    }
}

const SERVICE: &str = "switchyard.test.Echo";
const STREAMED: u32 = 100;

// ---- the backend -----------------------------------------------------------

/// Unary: echoes the text, with initial metadata `x-header: h`.
async fn unary(req: Request<Msg>) -> Result<Response<Msg>, Status> {
    let m = req.into_inner();
    let mut resp = Response::new(msg(&format!("echo {}", m.text), m.n));
    resp.metadata_mut().insert("x-header", "h".parse().unwrap());
    Ok(resp)
}

/// Unary that always fails, with a message and metadata of its own.
async fn fail(_: Request<Msg>) -> Result<Response<Msg>, Status> {
    let mut md = MetadataMap::new();
    md.insert("x-detail", "why".parse().unwrap());
    Err(Status::with_metadata(Code::NotFound, "nope", md))
}

/// Server streaming: `n` messages numbered 0..n.
async fn count(
    req: Request<Msg>,
) -> Result<Response<impl futures::Stream<Item = Result<Msg, Status>> + Send + 'static>, Status> {
    let n = req.into_inner().n;
    Ok(Response::new(futures::stream::iter(
        (0..n).map(|i| Ok(msg(&format!("item {i}"), i))),
    )))
}

/// Client streaming: the sum of the numbers sent, and how many there were.
async fn sum(req: Request<Streaming<Msg>>) -> Result<Response<Msg>, Status> {
    let mut stream = req.into_inner();
    let (mut total, mut seen) = (0, 0);
    while let Some(m) = stream.message().await? {
        total += m.n;
        seen += 1;
    }
    Ok(Response::new(msg(&format!("{seen} messages"), total)))
}

/// Bidirectional: one reply per request, as each arrives.
async fn echo_each(
    req: Request<Streaming<Msg>>,
) -> Result<Response<impl futures::Stream<Item = Result<Msg, Status>> + Send + 'static>, Status> {
    let replies = req
        .into_inner()
        .map(|m| m.map(|m| msg(&format!("echo {}", m.text), m.n)));
    Ok(Response::new(replies))
}

/// Lets an async fn stand where tonic wants a `UnaryService` (and the other
/// method kinds): those are implemented for every matching tower `Service`.
struct Handler<F>(F);

impl<F, Fut, Req, Resp> Service<Request<Req>> for Handler<F>
where
    F: FnMut(Request<Req>) -> Fut,
    Fut: Future<Output = Result<Response<Resp>, Status>>,
{
    type Response = Response<Resp>;
    type Error = Status;
    type Future = Fut;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Req>) -> Fut {
        (self.0)(req)
    }
}

/// The service as `tonic-build` would generate it: route on the path, let
/// `tonic::server::Grpc` decode, call and encode.
#[derive(Clone)]
struct Echo;

impl Service<http::Request<Body>> for Echo {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(ProstCodec::<Msg, Msg>::default());
            let method = req.uri().path().strip_prefix(&format!("/{SERVICE}/"));
            let resp = match method {
                Some("Unary") => grpc.unary(Handler(unary), req).await,
                Some("Fail") => grpc.unary(Handler(fail), req).await,
                Some("Count") => grpc.server_streaming(Handler(count), req).await,
                Some("Sum") => grpc.client_streaming(Handler(sum), req).await,
                Some("EchoEach") => grpc.streaming(Handler(echo_each), req).await,
                _ => Status::unimplemented("no such method").into_http(),
            };
            Ok(resp.map(with_trailer))
        })
    }
}

/// Adds `x-trailer: yes` to the trailers that end a reply body. tonic has no
/// API for custom trailing metadata on success (grpc-go's `SetTrailer`), so
/// the backend adds it at the HTTP/2 layer.
fn with_trailer(body: Body) -> Body {
    Body::new(body.map_frame(|mut frame| {
        if let Some(trailers) = frame.trailers_mut() {
            trailers.insert("x-trailer", "yes".parse().unwrap());
        }
        frame
    }))
}

/// Starts the tonic backend on an ephemeral loopback port (h2c).
async fn start_backend() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    tokio::spawn(Server::builder().serve_with_incoming(Echo, incoming));
    addr
}

// ---- switchyard and the client ---------------------------------------------

/// The backend on a runtime, and switchyard in front of it: `listener` is
/// the YAML of the listener's own keys besides `listen` and `routes`.
fn setup(listener: &str) -> (tokio::runtime::Runtime, Proxy) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let backend = rt.block_on(start_backend());
    let proxy = Proxy::start(&format!(
        "listeners:\n  web:\n    listen: \"{{HTTP}}\"\n{listener}    routes: [{{ upstream: grpc }}]\nupstreams:\n  grpc:\n    protocol: h2\n    retries: 0\n    backends: [{{ addr: \"{backend}\" }}]\n"
    ));
    (rt, proxy)
}

fn h2c_proxy() -> (tokio::runtime::Runtime, Proxy) {
    setup("    h2c: true\n")
}

type Client = tonic::client::Grpc<Channel>;

async fn client(endpoint: Endpoint) -> Client {
    let channel = endpoint
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .expect("connect to switchyard");
    tonic::client::Grpc::new(channel)
}

/// Waits until the channel takes a call: needed before each one.
async fn ready(grpc: &mut Client) -> &mut Client {
    grpc.ready().await.expect("channel ready");
    grpc
}

async fn h2c_client(proxy: &Proxy) -> Client {
    client(Endpoint::from_shared(format!("http://{}", proxy.http)).unwrap()).await
}

fn path(method: &str) -> PathAndQuery {
    format!("/{SERVICE}/{method}").parse().unwrap()
}

fn codec() -> ProstCodec<Msg, Msg> {
    ProstCodec::default()
}

/// Runs `test` on `rt`, failing (rather than hanging) after 30 seconds.
fn run(rt: &tokio::runtime::Runtime, proxy: &Proxy, test: impl Future<Output = ()>) {
    let done = rt.block_on(async { tokio::time::timeout(Duration::from_secs(30), test).await });
    assert!(done.is_ok(), "timed out\n{}", proxy.log());
}

fn value<'a>(md: &'a MetadataMap, key: &str) -> Option<&'a str> {
    md.get(key).map(|v| v.to_str().unwrap())
}

async fn unary_round_trip(grpc: &mut Client, proxy: &Proxy) {
    let resp = ready(grpc)
        .await
        .unary(Request::new(msg("hello", 7)), path("Unary"), codec())
        .await
        .unwrap_or_else(|s| panic!("{s:?}\n{}", proxy.log()));
    // tonic merges the trailers into the response metadata.
    let md = resp.metadata().clone();
    assert_eq!(resp.into_inner(), msg("echo hello", 7));
    assert_eq!(value(&md, "x-header"), Some("h"), "{md:?}");
    assert_eq!(value(&md, "x-trailer"), Some("yes"), "{md:?}");
    assert_eq!(value(&md, "grpc-status"), Some("0"), "{md:?}");
}

// ---- the tests -------------------------------------------------------------

#[test]
fn unary_with_trailing_metadata() {
    let (rt, proxy) = h2c_proxy();
    run(&rt, &proxy, async {
        let mut grpc = h2c_client(&proxy).await;
        // Twice on the one client connection.
        for _ in 0..2 {
            unary_round_trip(&mut grpc, &proxy).await;
        }
    });
}

#[test]
fn error_status_reaches_the_client() {
    let (rt, proxy) = h2c_proxy();
    run(&rt, &proxy, async {
        let mut grpc = h2c_client(&proxy).await;
        let err = ready(&mut grpc)
            .await
            .unary(Request::new(msg("x", 0)), path("Fail"), codec())
            .await
            .expect_err("the backend fails this call");
        assert_eq!(err.code(), Code::NotFound, "{err:?}\n{}", proxy.log());
        assert_eq!(err.message(), "nope");
        assert_eq!(value(err.metadata(), "x-detail"), Some("why"), "{err:?}");
        // An unknown method is the backend's answer too, not a proxy error.
        let err = ready(&mut grpc)
            .await
            .unary(Request::new(msg("x", 0)), path("Nope"), codec())
            .await
            .expect_err("no such method");
        assert_eq!(err.code(), Code::Unimplemented, "{err:?}");
    });
}

#[test]
fn server_streaming_in_order_then_trailers() {
    let (rt, proxy) = h2c_proxy();
    run(&rt, &proxy, async {
        let mut grpc = h2c_client(&proxy).await;
        let mut stream = ready(&mut grpc)
            .await
            .server_streaming(Request::new(msg("", STREAMED)), path("Count"), codec())
            .await
            .unwrap_or_else(|s| panic!("{s:?}\n{}", proxy.log()))
            .into_inner();
        let mut got = Vec::new();
        while let Some(m) = stream.message().await.unwrap() {
            got.push(m);
        }
        let want: Vec<Msg> = (0..STREAMED)
            .map(|i| msg(&format!("item {i}"), i))
            .collect();
        assert_eq!(got.len(), want.len());
        assert_eq!(got, want);
        let trailers = stream.trailers().await.unwrap().expect("trailers");
        assert_eq!(value(&trailers, "grpc-status"), Some("0"), "{trailers:?}");
        assert_eq!(value(&trailers, "x-trailer"), Some("yes"), "{trailers:?}");
    });
}

#[test]
fn client_streaming() {
    let (rt, proxy) = h2c_proxy();
    run(&rt, &proxy, async {
        let mut grpc = h2c_client(&proxy).await;
        let requests = futures::stream::iter((1..=50).map(|i| msg("n", i)));
        let resp = ready(&mut grpc)
            .await
            .client_streaming(Request::new(requests), path("Sum"), codec())
            .await
            .unwrap_or_else(|s| panic!("{s:?}\n{}", proxy.log()));
        assert_eq!(value(resp.metadata(), "x-trailer"), Some("yes"));
        assert_eq!(resp.into_inner(), msg("50 messages", 50 * 51 / 2));
    });
}

#[test]
fn bidi_streaming_in_lock_step() {
    let (rt, proxy) = h2c_proxy();
    run(&rt, &proxy, async {
        let mut grpc = h2c_client(&proxy).await;
        let (tx, rx) = futures::channel::mpsc::unbounded();
        let mut replies = ready(&mut grpc)
            .await
            .streaming(Request::new(rx), path("EchoEach"), codec())
            .await
            .unwrap_or_else(|s| panic!("{s:?}\n{}", proxy.log()))
            .into_inner();
        for i in 0..20 {
            tx.unbounded_send(msg(&format!("ping {i}"), i)).unwrap();
            let reply = replies.message().await.unwrap().expect("a reply");
            assert_eq!(reply, msg(&format!("echo ping {i}"), i));
        }
        drop(tx);
        assert_eq!(replies.message().await.unwrap(), None);
        let trailers = replies.trailers().await.unwrap().expect("trailers");
        assert_eq!(value(&trailers, "grpc-status"), Some("0"), "{trailers:?}");
        assert_eq!(value(&trailers, "x-trailer"), Some("yes"), "{trailers:?}");
    });
}

#[test]
fn unary_over_a_tls_listener() {
    let dir = tempfile::tempdir().unwrap();
    // rustls will not take a self-signed certificate as both CA and leaf.
    let ca = certs::ca(dir.path(), "ca");
    let pem = certs::signed(dir.path(), "web", "localhost", &ca);
    let (rt, proxy) = setup(&format!(
        "    tls: {{ cert: \"{}\", key: \"{}\" }}\n",
        pem.cert.display(),
        pem.key.display()
    ));
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(std::fs::read(&ca.cert).unwrap()))
        .domain_name("localhost");
    let endpoint = Endpoint::from_shared(format!("https://{}", proxy.http))
        .unwrap()
        .tls_config(tls)
        .unwrap();
    run(&rt, &proxy, async {
        let mut grpc = client(endpoint).await;
        unary_round_trip(&mut grpc, &proxy).await;
    });
}
