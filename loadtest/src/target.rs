//! A small HTTP target with a known service time, for tests, the benchmark and
//! trying the generator out (`loadtest target-server`).
//!
//! Every request waits `delay` and answers `status`; when `stall` is set, every
//! request arriving in that window (measured from the server's start) is held
//! until the window ends, like a server paused by a GC or a lock. `GET /metrics`
//! answers `target_requests_total` in the Prometheus text format.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::Instant;

#[derive(Debug, Clone)]
pub struct TargetConfig {
    pub delay: Duration,
    /// (start after the server starts, length).
    pub stall: Option<(Duration, Duration)>,
    pub status: u16,
}

impl Default for TargetConfig {
    fn default() -> Self {
        Self {
            delay: Duration::ZERO,
            stall: None,
            status: 200,
        }
    }
}

pub struct TargetServer {
    pub addr: SocketAddr,
    received: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl TargetServer {
    /// Listens on `listen` (port 0 picks one) and serves until dropped.
    pub async fn start(listen: &str, config: TargetConfig) -> std::io::Result<Self> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let received = Arc::new(AtomicU64::new(0));
        let counter = received.clone();
        let started = Instant::now();
        let config = Arc::new(config);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                stream.set_nodelay(true).ok();
                let counter = counter.clone();
                let config = config.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let counter = counter.clone();
                        let config = config.clone();
                        async move { Ok::<_, Infallible>(answer(req, &config, &counter, started).await) }
                    });
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await
                        .ok();
                });
            }
        });
        Ok(Self {
            addr,
            received,
            task,
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests received so far (not counting `/metrics`).
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }
}

impl Drop for TargetServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(
    req: Request<hyper::body::Incoming>,
    config: &TargetConfig,
    counter: &AtomicU64,
    started: Instant,
) -> Response<Full<Bytes>> {
    if req.uri().path() == "/metrics" {
        let body = format!(
            "# TYPE target_requests_total counter\ntarget_requests_total {}\n",
            counter.load(Ordering::Relaxed)
        );
        return Response::new(Full::new(Bytes::from(body)));
    }
    counter.fetch_add(1, Ordering::Relaxed);
    if let Some((at, length)) = config.stall {
        let elapsed = started.elapsed();
        if elapsed >= at && elapsed < at + length {
            tokio::time::sleep_until(started + at + length).await;
        }
    }
    if !config.delay.is_zero() {
        tokio::time::sleep(config.delay).await;
    }
    let mut response = Response::new(Full::new(Bytes::from_static(b"ok")));
    *response.status_mut() = StatusCode::from_u16(config.status).unwrap_or(StatusCode::OK);
    response
}
