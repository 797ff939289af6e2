//! Hypercare traces itself: with `[traces] otlp_endpoint` set, its request,
//! ingest and insert spans reach an OTLP/HTTP receiver, joined to the caller's
//! trace by `traceparent`. A separate test binary, because the tracing
//! subscriber is global to a process.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpResponse, HttpServer, web};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

use hypercare_telemetry::{LogSettings, TraceSettings};
use hypercare_tests::{INGEST_KEY, ndjson_events, spawn_app};

/// A local OTLP/HTTP trace receiver: the stand-in for a Collector.
type Received = Arc<Mutex<Vec<ExportTraceServiceRequest>>>;

async fn receive(body: web::Bytes, received: web::Data<Received>) -> HttpResponse {
    match ExportTraceServiceRequest::decode(body) {
        Ok(request) => {
            received.lock().unwrap().push(request);
            HttpResponse::Ok()
                .content_type("application/x-protobuf")
                .finish()
        }
        Err(_) => HttpResponse::BadRequest().finish(),
    }
}

#[derive(Debug)]
struct Span {
    name: String,
    trace_id: String,
    parent_span_id: String,
    service: String,
}

fn spans(received: &Received) -> Vec<Span> {
    let mut out = Vec::new();
    for request in received.lock().unwrap().iter() {
        for resource_spans in &request.resource_spans {
            let service = resource_spans
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| kv.value.as_ref())
                .map(|v| format!("{:?}", v.value))
                .unwrap_or_default();
            for scope in &resource_spans.scope_spans {
                for span in &scope.spans {
                    out.push(Span {
                        name: span.name.clone(),
                        trace_id: hex::encode(&span.trace_id),
                        parent_span_id: hex::encode(&span.parent_span_id),
                        service: service.clone(),
                    });
                }
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ingest_and_insert_spans_reach_the_configured_receiver() {
    let received: Received = Arc::default();
    let data = web::Data::new(received.clone());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route("/v1/traces", web::post().to(receive))
    })
    .listen(listener)
    .unwrap()
    .workers(1)
    .run();
    tokio::spawn(server);

    let traces = TraceSettings {
        otlp_endpoint: Some(format!("http://127.0.0.1:{port}")),
        service_name: "hypercare-under-test".into(),
        ..TraceSettings::default()
    };
    let logs = LogSettings {
        filter: "info".into(),
        ..LogSettings::default()
    };
    let telemetry = tokio::task::spawn_blocking(move || {
        hypercare_telemetry::init(&logs, &traces, std::io::sink).unwrap()
    })
    .await
    .unwrap();

    let app = spawn_app().await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let response = app
        .http
        .post(format!("{}/v1/events", app.address))
        .bearer_auth(INGEST_KEY)
        .header("content-type", "application/x-ndjson")
        .header("traceparent", format!("00-{trace_id}-{caller_span}-01"))
        .body(ndjson_events("traced", 3))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);

    tokio::task::spawn_blocking(move || telemetry.shutdown())
        .await
        .unwrap();
    // The exporter has flushed on shutdown; allow the receiver a moment.
    let mut spans = spans(&received);
    for _ in 0..50 {
        if spans.iter().any(|s| s.name == "clickhouse.insert") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        spans = self::spans(&received);
    }

    let request = spans
        .iter()
        .find(|s| s.name == "http_request")
        .unwrap_or_else(|| panic!("no request span in {spans:#?}"));
    assert_eq!(request.trace_id, trace_id, "the caller's trace is joined");
    assert_eq!(request.parent_span_id, caller_span);
    assert!(
        request.service.contains("hypercare-under-test"),
        "{request:?}"
    );
    let handler = spans
        .iter()
        .find(|s| s.name == "ingest.events")
        .unwrap_or_else(|| panic!("no ingest span in {spans:#?}"));
    assert_eq!(handler.trace_id, trace_id);
    assert!(
        spans.iter().any(|s| s.name == "clickhouse.insert"),
        "no insert span in {spans:#?}"
    );
}
