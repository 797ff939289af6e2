//! The request middleware: a request id, a span, one log line and HTTP metrics.
//!
//! The request id is taken from `X-Request-Id` when the caller sends a sane one
//! (up to 128 visible ASCII characters), generated otherwise, echoed in the
//! response and recorded on the request's span, so that every log line the
//! request causes carries it.
//!
//! Metric labels stay bounded whatever a client sends: the route is the matched
//! pattern (`unmatched` otherwise) and a method outside the standard ones is
//! `other`, so random paths and methods cannot grow `/metrics` without end.
//!
//! A handler that panics is a bug, but must not cost the client its answer nor
//! the worker its other connections: the panic is caught here, answered 500 with
//! the JSON error body, logged with the request id and counted in
//! `hypercare_http_panics_total`.

use std::panic::AssertUnwindSafe;
use std::time::Instant;

use actix_web::HttpMessage;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use futures_util::FutureExt;
use prometheus::{HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry};
use tracing::Instrument;

use hypercare_telemetry::metric_name;

use crate::error::{ErrorCode, error_response};

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// HTTP metrics, labelled by route pattern (never the raw path), method and status.
#[derive(Clone)]
pub struct HttpMetrics {
    requests: IntCounterVec,
    duration: HistogramVec,
    panics: IntCounter,
}

impl HttpMetrics {
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let requests = IntCounterVec::new(
            Opts::new(
                metric_name("http_requests_total"),
                "HTTP requests answered.",
            ),
            &["route", "method", "status"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                metric_name("http_request_duration_seconds"),
                "Time from request start to response head, in seconds.",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["route", "method"],
        )?;
        let panics = IntCounter::with_opts(Opts::new(
            metric_name("http_panics_total"),
            "Requests whose handler panicked; each was answered 500. Any is a bug.",
        ))?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(panics.clone()))?;
        Ok(Self {
            requests,
            duration,
            panics,
        })
    }
}

/// The method as a metric label: one of the standard methods, else `other`.
fn method_label(method: &Method) -> &'static str {
    const KNOWN: [Method; 9] = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::HEAD,
        Method::OPTIONS,
        Method::CONNECT,
        Method::TRACE,
    ];
    KNOWN
        .iter()
        .find(|known| *known == method)
        .map_or("other", Method::as_str)
}

/// The middleware function; wrap an app with
/// `middleware::from_fn(move |req, next| observe(metrics.clone(), req, next))`.
pub async fn observe(
    metrics: HttpMetrics,
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let request_id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|id| !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let method = method_label(req.method());
    let route = req.match_pattern().unwrap_or_else(|| "unmatched".into());
    let span = tracing::info_span!(
        "http_request",
        request_id = %request_id,
        method = %method,
        route = %route,
    );
    // Join the caller's trace when it sent a W3C `traceparent`.
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&HeaderExtractor(req.headers()))
    });
    tracing_opentelemetry::OpenTelemetrySpanExt::set_parent(&span, parent).ok();
    req.extensions_mut().insert(RequestId(request_id.clone()));

    let outcome = AssertUnwindSafe(next.call(req).instrument(span.clone()))
        .catch_unwind()
        .await;
    let elapsed = started.elapsed();
    let mut response = match outcome {
        Ok(result) => result?,
        Err(panic) => {
            // The request went into the handler, so no `ServiceResponse` can be
            // built here: answer through an error that carries its own response.
            metrics.panics.inc();
            let status = StatusCode::INTERNAL_SERVER_ERROR;
            let route_and_method = [route.as_str(), method, status.as_str()];
            metrics.requests.with_label_values(&route_and_method).inc();
            let what = panic_message(panic.as_ref());
            span.in_scope(|| tracing::error!(panic = %what, "A handler panicked; answered 500."));
            let mut body = error_response(
                ErrorCode::InternalError,
                "the service hit an internal error while answering; it was logged with this request's id",
            );
            if let Ok(value) = HeaderValue::from_str(&request_id) {
                body.headers_mut().insert(REQUEST_ID, value);
            }
            return Err(actix_web::error::InternalError::from_response(what, body).into());
        }
    };
    let status = response.status();
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    metrics
        .requests
        .with_label_values(&[route.as_str(), method, status.as_str()])
        .inc();
    metrics
        .duration
        .with_label_values(&[route.as_str(), method])
        .observe(elapsed.as_secs_f64());
    span.in_scope(|| {
        let millis = elapsed.as_secs_f64() * 1000.0;
        if status.is_server_error() {
            tracing::warn!(status = status.as_u16(), millis, "Request failed.");
        } else {
            tracing::info!(status = status.as_u16(), millis, "Request finished.");
        }
    });
    Ok(response)
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = panic.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

/// Reads propagation headers (`traceparent`, `tracestate`) from a request.
struct HeaderExtractor<'a>(&'a actix_web::http::header::HeaderMap);

impl opentelemetry::propagation::Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// The request's id, in the request extensions for handlers that want it.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// The service's own Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "service",
    responses((status = 200, description = "Prometheus text exposition format", content_type = "text/plain", body = String)))]
pub async fn prometheus_metrics(
    registry: actix_web::web::Data<prometheus::Registry>,
) -> actix_web::HttpResponse {
    use prometheus::Encoder as _;
    let mut buffer = Vec::new();
    let encoder = prometheus::TextEncoder::new();
    match encoder.encode(&registry.gather(), &mut buffer) {
        Ok(()) => actix_web::HttpResponse::Ok()
            .content_type(encoder.format_type())
            .body(buffer),
        Err(e) => error_response(ErrorCode::InternalError, e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::middleware::from_fn;
    use actix_web::test as actix_test;
    use actix_web::{App, HttpResponse, web};

    #[test]
    fn methods_outside_the_standard_ones_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        let invented = Method::from_bytes(b"M00079F774D14").unwrap();
        assert_eq!(method_label(&invented), "other");
    }

    #[actix_web::test]
    async fn a_panicking_handler_answers_500_json_and_is_counted() {
        let registry = Registry::new();
        let metrics = HttpMetrics::register(&registry).unwrap();
        let counted = metrics.clone();
        let app = actix_test::init_service(
            App::new()
                .wrap(from_fn(move |req, next| {
                    observe(metrics.clone(), req, next)
                }))
                .route(
                    "/boom",
                    web::get().to(|req: actix_web::HttpRequest| async move {
                        // A date computed from the request that does not exist.
                        let day = req.path().len().checked_sub(1000);
                        HttpResponse::Ok().body(day.expect("a day").to_string())
                    }),
                )
                .route(
                    "/fine",
                    web::get().to(|| async { HttpResponse::Ok().finish() }),
                ),
        )
        .await;

        // What the server sends for an error is the error's own response.
        let error = actix_test::try_call_service(
            &app,
            actix_test::TestRequest::get().uri("/boom").to_request(),
        )
        .await
        .map(|_| ())
        .expect_err("the panic becomes an error response");
        let response = error.error_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(response.headers().contains_key(REQUEST_ID));
        let bytes = actix_web::body::to_bytes(response.into_body())
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body["error"], "internal_error");
        assert_eq!(counted.panics.get(), 1);

        // The worker still answers.
        let response = actix_test::call_service(
            &app,
            actix_test::TestRequest::get().uri("/fine").to_request(),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(counted.panics.get(), 1);
    }
}
