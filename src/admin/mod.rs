//! The admin listener: `GET /` (the status page, for people), `GET /metrics`
//! (Prometheus text), `GET /status` (JSON), `GET /healthz` (`ok`), and the
//! write API under `/upstreams/` ([`write`], bearer token). Anything else is
//! a 404; other methods 405. `POST /reload` (same token as the write API)
//! reloads the config file ([`crate::live`]): 200 with what changed, 400
//! with the checker's text or the listener change that needs an upgrade.
//! It is a plain Pingora HTTP app on its own service and thread; what it
//! shows is the live generation's.

pub mod metrics;
pub mod status;
pub mod status_counters;
pub mod write;

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use http::{Method, Response, StatusCode};
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;

pub use metrics::Metrics;

use crate::live::Live;

/// The status page: one self-contained file (inline CSS and JS, no external
/// assets) that polls `/status`.
pub const STATUS_PAGE: &str = include_str!("page.html");

pub struct AdminApp {
    pub live: Arc<Live>,
    pub started: Instant,
    /// `server.max_connections` in force (derived from the fd limit when 0).
    pub max_connections: usize,
}

#[async_trait]
impl ServeHttp for AdminApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let req = session.req_header();
        let writing = req.method == Method::POST || req.method == Method::PUT;
        if writing && write::is_write_path(req.uri.path()) {
            let (status, body) = write::handle(session, &self.live).await;
            return reply(status, "text/plain", body.into_bytes());
        }
        if req.method == Method::POST && req.uri.path() == "/reload" {
            let (status, body) = self.reload(session).await;
            return reply(status, "text/plain", body.into_bytes());
        }
        if req.method != Method::GET && req.method != Method::HEAD {
            return reply(
                StatusCode::METHOD_NOT_ALLOWED,
                "text/plain",
                b"405 method not allowed\n".to_vec(),
            );
        }
        match req.uri.path() {
            "/" => reply(
                StatusCode::OK,
                "text/html; charset=utf-8",
                STATUS_PAGE.as_bytes().to_vec(),
            ),
            "/metrics" => {
                let generation = self.live.current();
                let metrics = self.live.metrics();
                metrics.refresh(generation.upstreams.values());
                reply(
                    StatusCode::OK,
                    "text/plain; version=0.0.4",
                    metrics.render().into_bytes(),
                )
            }
            "/status" => {
                let generation = self.live.current();
                let snapshot = status::snapshot(&generation, self.live.metrics(), self.started)
                    .with_reloads(self.live.file(), self.live.last_reload());
                let snapshot = status::Status {
                    max_connections: self.max_connections,
                    ..snapshot
                };
                let body = serde_json::to_vec_pretty(&snapshot)
                    .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}").into_bytes());
                reply(StatusCode::OK, "application/json", body)
            }
            "/healthz" => reply(StatusCode::OK, "text/plain", b"ok\n".to_vec()),
            _ => reply(
                StatusCode::NOT_FOUND,
                "text/plain",
                b"404 not found: try /, /metrics, /status or /healthz\n".to_vec(),
            ),
        }
    }
}

impl AdminApp {
    /// `POST /reload`: authorized as a write, then the same reload as SIGHUP.
    async fn reload(&self, session: &ServerSession) -> write::Answer {
        let token = self
            .live
            .current()
            .config
            .admin
            .as_ref()
            .and_then(|a| a.token.clone());
        if let Err(answer) = write::authorize(session, token.as_ref()) {
            return answer;
        }
        let live = Arc::clone(&self.live);
        // Reading and checking files blocks: not on the admin runtime.
        match tokio::task::spawn_blocking(move || live.reload()).await {
            Ok(Ok(summary)) => (StatusCode::OK, format!("{summary}\n")),
            Ok(Err(why)) => (StatusCode::BAD_REQUEST, format!("{why}\n")),
            Err(e) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("reload failed: {e}\n"),
            ),
        }
    }
}

fn reply(status: StatusCode, content_type: &str, body: Vec<u8>) -> Response<Vec<u8>> {
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    let len = resp.body().len();
    let headers = resp.headers_mut();
    if let Ok(v) = content_type.parse() {
        headers.insert(http::header::CONTENT_TYPE, v);
    }
    headers.insert(http::header::CONTENT_LENGTH, len.into());
    resp
}
