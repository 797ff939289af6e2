//! Property tests of every decoder: arbitrary bytes and arbitrary well-formed
//! requests never panic, and never hold more than the budget allows.

use bytes::BytesMut;
use hypercare_ingest::budget::{Budget, EncodedLimit, OverBudget};
use hypercare_ingest::config::Limits;
use hypercare_ingest::event::{self, RequestContext};
use hypercare_ingest::otlp::{json as otlp_json, logs, metrics as otlp_metrics};
use hypercare_ingest::records::{BodyRefused, Framing, encode_body};
use hypercare_ingest::remote_write::{self, Label, Sample, TimeSeries, WriteRequest};
use hypercare_ingest::segment::{self, Call};
use hypercare_ingest::wire::{self, Kind};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets;
use opentelemetry_proto::tonic::metrics::v1::summary_data_point::ValueAtQuantile;
use opentelemetry_proto::tonic::metrics::v1::{
    ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Summary, SummaryDataPoint, metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use proptest::prelude::*;
use prost::Message;

const NOW_MS: i64 = 1_795_341_600_000;

fn ctx(limits: &Limits) -> RequestContext<'_> {
    RequestContext {
        limits,
        received_ms: NOW_MS,
        api_key: "prop",
        late_hours: Default::default(),
    }
}

fn small_budget() -> Budget {
    Budget {
        max_records: 20,
        max_values_per_record: 64,
        max_encoded_bytes: 4_000,
        encoded_limit: EncodedLimit::Queue { capacity: 4_000 },
    }
}

/// Any JSON value, a few levels deep.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(serde_json::Value::from),
        "[a-z_$.]{0,12}".prop_map(serde_json::Value::from),
        "\\PC{0,20}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(serde_json::Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        Just("event".to_owned()),
                        Just("user_id".to_owned()),
                        Just("timestamp".to_owned()),
                        Just("properties".to_owned()),
                        Just("type".to_owned()),
                        Just("userId".to_owned()),
                        "[a-z]{1,6}"
                    ],
                    inner
                ),
                0..8
            )
            .prop_map(|fields| serde_json::Value::Object(fields.into_iter().collect())),
        ]
    })
}

/// An event-like record: mostly valid, with arbitrary values mixed in.
fn event_record() -> impl Strategy<Value = serde_json::Value> {
    (
        "[a-z_]{0,10}",
        prop::option::of("[a-z0-9-]{0,10}"),
        prop::option::of(json_value()),
        prop::collection::btree_map("[a-z]{1,5}", json_value(), 0..5),
    )
        .prop_map(|(event, user, timestamp, properties)| {
            let mut record = serde_json::json!({"event": event, "properties": properties});
            if let Some(user) = user {
                record["user_id"] = user.into();
            }
            if let Some(ts) = timestamp {
                record["timestamp"] = ts;
            }
            record
        })
}

fn check_json_outcome(result: &Result<hypercare_ingest::records::EncodedBatch, BodyRefused>) {
    let budget = small_budget();
    if let Ok(batch) = result {
        assert!(batch.rows + batch.rejected.len() <= budget.max_records);
        assert!(batch.data.len() <= budget.max_encoded_bytes);
    }
}

fn encode_json(
    body: &[u8],
    framing: Framing,
) -> Result<hypercare_ingest::records::EncodedBatch, BodyRefused> {
    let limits = Limits::default();
    let ctx = ctx(&limits);
    encode_body(
        body,
        framing,
        &small_budget(),
        |record, out: &mut BytesMut| event::encode(record, &ctx, out),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn json_and_ndjson_bytes_never_panic_nor_pass_the_budget(body in any::<Vec<u8>>(), ndjson in any::<bool>()) {
        let framing = if ndjson { Framing::Ndjson } else { Framing::Json };
        check_json_outcome(&encode_json(&body, framing));
    }

    #[test]
    fn json_records_are_each_stored_or_rejected_and_the_count_is_bounded(
        records in prop::collection::vec(event_record(), 0..40),
        ndjson in any::<bool>(),
    ) {
        let (body, framing) = if ndjson {
            let lines: Vec<String> = records.iter().map(|r| r.to_string()).collect();
            (lines.join("\n"), Framing::Ndjson)
        } else {
            (serde_json::Value::Array(records.clone()).to_string(), Framing::Json)
        };
        let result = encode_json(body.as_bytes(), framing);
        check_json_outcome(&result);
        match &result {
            Ok(batch) => prop_assert_eq!(batch.rows + batch.rejected.len(), records.len()),
            Err(BodyRefused::OverBudget(OverBudget::Records { .. })) => {
                prop_assert!(records.len() > small_budget().max_records)
            }
            Err(BodyRefused::OverBudget(_)) => {}
            Err(BodyRefused::Empty) => prop_assert!(records.is_empty() && ndjson),
            Err(e) => prop_assert!(false, "{e}"),
        }
    }
}

// --- OTLP --------------------------------------------------------------

fn any_value() -> impl Strategy<Value = Option<AnyValue>> {
    prop_oneof![
        Just(None),
        "\\PC{0,16}".prop_map(|s| Some(AnyValue {
            value: Some(any_value::Value::StringValue(s))
        })),
        any::<f64>().prop_map(|d| Some(AnyValue {
            value: Some(any_value::Value::DoubleValue(d))
        })),
        Just(Some(AnyValue { value: None })),
    ]
}

fn attributes() -> impl Strategy<Value = Vec<KeyValue>> {
    prop::collection::vec(
        ("[a-z.]{0,12}", any_value()).prop_map(|(key, value)| KeyValue {
            key,
            value,
            ..Default::default()
        }),
        0..6,
    )
}

fn time() -> impl Strategy<Value = u64> {
    prop_oneof![Just(0u64), Just(NOW_MS as u64 * 1_000_000), any::<u64>(),]
}

fn exponential_point() -> impl Strategy<Value = ExponentialHistogramDataPoint> {
    (
        any::<i32>(),
        any::<i32>(),
        prop::collection::vec(0u64..5, 0..300),
        any::<i32>(),
        prop::collection::vec(0u64..5, 0..50),
        any::<f64>(),
        prop::option::of(any::<f64>()),
        any::<u64>(),
        time(),
    )
        .prop_map(
            |(
                scale,
                offset,
                counts,
                neg_offset,
                neg_counts,
                zero_threshold,
                sum,
                zero_count,
                t,
            )| {
                let total = counts.iter().sum::<u64>() + neg_counts.iter().sum::<u64>();
                ExponentialHistogramDataPoint {
                    scale: scale % 25,
                    zero_threshold,
                    zero_count: zero_count % 3,
                    count: total + zero_count % 3,
                    sum,
                    time_unix_nano: t,
                    positive: Some(Buckets {
                        offset,
                        bucket_counts: counts,
                    }),
                    negative: Some(Buckets {
                        offset: neg_offset,
                        bucket_counts: neg_counts,
                    }),
                    ..Default::default()
                }
            },
        )
}

fn summary_point() -> impl Strategy<Value = SummaryDataPoint> {
    (
        any::<f64>(),
        any::<u64>(),
        prop::collection::vec((any::<f64>(), any::<f64>()), 0..5),
        attributes(),
        time(),
    )
        .prop_map(|(sum, count, quantiles, attributes, t)| SummaryDataPoint {
            sum,
            count,
            attributes,
            time_unix_nano: t,
            quantile_values: quantiles
                .into_iter()
                .map(|(quantile, value)| ValueAtQuantile { quantile, value })
                .collect(),
            ..Default::default()
        })
}

fn number_point() -> impl Strategy<Value = NumberDataPoint> {
    (any::<f64>(), attributes(), time(), any::<u32>()).prop_map(|(v, attributes, t, flags)| {
        NumberDataPoint {
            value: Some(number_data_point::Value::AsDouble(v)),
            attributes,
            time_unix_nano: t,
            flags: flags & 1,
            ..Default::default()
        }
    })
}

fn otlp_metric() -> impl Strategy<Value = Metric> {
    let data = prop_oneof![
        prop::collection::vec(number_point(), 0..5)
            .prop_map(|data_points| metric::Data::Gauge(Gauge { data_points })),
        prop::collection::vec(exponential_point(), 0..3).prop_map(|data_points| {
            metric::Data::ExponentialHistogram(ExponentialHistogram {
                data_points,
                aggregation_temporality: 2,
            })
        }),
        prop::collection::vec(summary_point(), 0..3)
            .prop_map(|data_points| metric::Data::Summary(Summary { data_points })),
    ];
    ("[a-z_.]{0,12}", "\\PC{0,8}", prop::option::of(data)).prop_map(|(name, unit, data)| Metric {
        name,
        unit,
        data,
        ..Default::default()
    })
}

fn metrics_request() -> impl Strategy<Value = ExportMetricsServiceRequest> {
    (
        attributes(),
        "\\PC{0,12}",
        prop::collection::vec(otlp_metric(), 0..6),
    )
        .prop_map(|(resource, scope, metrics)| ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(Resource {
                    attributes: resource,
                    ..Default::default()
                }),
                scope_metrics: vec![ScopeMetrics {
                    scope: Some(InstrumentationScope {
                        name: scope,
                        ..Default::default()
                    }),
                    metrics,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        })
}

fn logs_request() -> impl Strategy<Value = ExportLogsServiceRequest> {
    let record = (any_value(), attributes(), time(), 0i32..30, "\\PC{0,6}").prop_map(
        |(body, attributes, t, severity, event_name)| LogRecord {
            body,
            attributes,
            time_unix_nano: t,
            severity_number: severity,
            event_name,
            ..Default::default()
        },
    );
    (attributes(), prop::collection::vec(record, 0..20)).prop_map(|(resource, log_records)| {
        ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(Resource {
                    attributes: resource,
                    ..Default::default()
                }),
                scope_logs: vec![ScopeLogs {
                    log_records,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    })
}

fn points_in(request: &ExportMetricsServiceRequest) -> usize {
    request
        .resource_metrics
        .iter()
        .flat_map(|r| &r.scope_metrics)
        .flat_map(|s| &s.metrics)
        .map(|m| match &m.data {
            Some(metric::Data::Gauge(g)) => g.data_points.len(),
            Some(metric::Data::Sum(g)) => g.data_points.len(),
            Some(metric::Data::Histogram(g)) => g.data_points.len(),
            Some(metric::Data::ExponentialHistogram(g)) => g.data_points.len(),
            Some(metric::Data::Summary(g)) => g.data_points.len(),
            None => 0,
        })
        .sum()
}

fn records_in(request: &ExportLogsServiceRequest) -> usize {
    request
        .resource_logs
        .iter()
        .flat_map(|r| &r.scope_logs)
        .map(|s| s.log_records.len())
        .sum()
}

/// The most a single row can add past the encoder's stop: a summary point's rows.
const ONE_ROW: usize = 64 * 1024;

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn otlp_protobuf_bytes_never_panic_and_the_walk_counts_at_least_what_decodes(body in any::<Vec<u8>>()) {
        let limits = Limits::default();
        if let Ok(shape) = wire::shape(&body, Kind::MetricsRequest)
            && let Ok(request) = ExportMetricsServiceRequest::decode(body.as_slice())
        {
            prop_assert!(shape.records >= points_in(&request));
            let out = otlp_metrics::encode(&request, &ctx(&limits), 2_000);
            prop_assert!(out.over || out.data.len() <= 2_000);
        }
        if let Ok(shape) = wire::shape(&body, Kind::LogsRequest)
            && let Ok(request) = ExportLogsServiceRequest::decode(body.as_slice())
        {
            prop_assert!(shape.records >= records_in(&request));
            let out = logs::encode(&request, &ctx(&limits), 2_000);
            prop_assert!(out.over || out.data.len() <= 2_000);
        }
    }

    #[test]
    fn otlp_metrics_never_panic_and_stay_within_the_budget(request in metrics_request()) {
        let limits = Limits { max_histogram_buckets: 160, ..Limits::default() };
        let body = request.encode_to_vec();
        let shape = wire::shape(&body, Kind::MetricsRequest).unwrap();
        prop_assert_eq!(shape.records, points_in(&request));
        let out = otlp_metrics::encode(&request, &ctx(&limits), 8_000);
        prop_assert!(out.data.len() <= 8_000 + ONE_ROW);
        prop_assert!(out.over || out.data.len() <= 8_000);
        // A point is at most 7 rows (a summary: sum, count, 5 quantiles) or one
        // rejection; a metric without points is one rejection.
        let metrics = request.resource_metrics[0].scope_metrics[0].metrics.len();
        prop_assert!(out.rows + out.rejected_points <= 7 * shape.records + metrics);
    }

    #[test]
    fn otlp_logs_never_panic_and_count_exactly(request in logs_request()) {
        let limits = Limits::default();
        let body = request.encode_to_vec();
        let shape = wire::shape(&body, Kind::LogsRequest).unwrap();
        prop_assert_eq!(shape.records, records_in(&request));
        let out = logs::encode(&request, &ctx(&limits), usize::MAX);
        prop_assert_eq!(out.rows + out.rejected_points, shape.records);
    }

    #[test]
    fn otlp_json_never_panics_and_the_scan_counts_at_least_what_decodes(value in json_value(), logs in any::<bool>()) {
        let body = if logs {
            serde_json::json!({"resourceLogs": [{"scopeLogs": [{"logRecords": value}]}]})
        } else {
            serde_json::json!({"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"name": "m", "gauge": {"dataPoints": value}}]}]}]})
        }
        .to_string();
        let shape = otlp_json::shape(body.as_bytes()).unwrap();
        if logs {
            if let Ok(request) = otlp_json::logs_request(body.as_bytes()) {
                prop_assert!(shape.records >= records_in(&request));
            }
        } else if let Ok(request) = otlp_json::metrics_request(body.as_bytes()) {
            prop_assert!(shape.records >= points_in(&request));
        }
    }

    #[test]
    fn otlp_json_bytes_never_panic(body in any::<Vec<u8>>()) {
        otlp_json::shape(&body).ok();
        otlp_json::metrics_request(&body).ok();
        otlp_json::logs_request(&body).ok();
    }
}

// --- Prometheus remote write -------------------------------------------

fn write_request() -> impl Strategy<Value = WriteRequest> {
    let label = ("[a-z_]{0,8}|__name__", "\\PC{0,40}").prop_map(|(name, value)| Label {
        name: name.into_bytes().into(),
        value: value.into_bytes().into(),
    });
    let sample = (any::<f64>(), prop_oneof![Just(NOW_MS), any::<i64>()])
        .prop_map(|(value, timestamp)| Sample { value, timestamp });
    let series = (
        "[a-z_]{1,10}",
        prop::collection::vec(label, 0..6),
        prop::collection::vec(sample, 0..60),
    )
        .prop_map(|(name, mut labels, samples)| {
            labels.push(Label {
                name: "__name__".into(),
                value: name.into_bytes().into(),
            });
            TimeSeries { labels, samples }
        });
    prop::collection::vec(series, 0..8).prop_map(|timeseries| WriteRequest { timeseries })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn remote_write_bytes_never_panic(body in any::<Vec<u8>>()) {
        let limits = Limits::default();
        remote_write::decode(&body, &limits, 1 << 20).ok();
        let compressed = snap::raw::Encoder::new().compress_vec(&body).unwrap();
        if let Ok(request) = remote_write::decode(&compressed, &limits, 1 << 20) {
            remote_write::encode(&request, &ctx(&limits)).ok();
        }
    }

    #[test]
    fn remote_write_rows_never_exceed_the_size_computed_before_decoding(request in write_request()) {
        let limits = Limits { max_records_per_request: 200, ..Limits::default() };
        let raw = request.encode_to_vec();
        let shape = wire::remote_write_shape(&raw, remote_write::ROW_TAIL).unwrap();
        let samples: usize = request.timeseries.iter().map(|s| s.samples.len()).sum();
        prop_assert_eq!(shape.records, samples);
        let compressed = snap::raw::Encoder::new().compress_vec(&raw).unwrap();
        match remote_write::decode(&compressed, &limits, 1 << 30) {
            Ok(decoded) => {
                prop_assert!(samples <= limits.max_records_per_request);
                let outcome = remote_write::encode(&decoded, &ctx(&limits)).unwrap();
                prop_assert!(outcome.batch.data.len() <= shape.encoded_bytes);
            }
            Err(e) => prop_assert!(samples > limits.max_records_per_request, "{e}"),
        }
    }
}

// --- Segment -----------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn segment_key_scan_never_panics(body in any::<Vec<u8>>()) {
        segment::write_key(&body);
    }

    #[test]
    fn segment_calls_never_panic_and_each_is_stored_or_rejected(
        calls in prop::collection::vec(json_value(), 0..30),
        single in any::<bool>(),
    ) {
        let limits = Limits::default();
        let ctx = ctx(&limits);
        let root = if single {
            match calls.first() {
                Some(serde_json::Value::Object(m)) => m.clone(),
                _ => serde_json::Map::new(),
            }
        } else {
            let mut m = serde_json::Map::new();
            m.insert("batch".into(), serde_json::Value::Array(calls.clone()));
            m
        };
        let body = serde_json::Value::Object(root.clone()).to_string();
        prop_assert_eq!(segment::write_key(body.as_bytes()), None);
        let call = single.then_some(Call::Track);
        match segment::encode_calls(&root, call, &ctx, "prop", 20) {
            Ok(batch) => {
                let expected = if single { 1 } else { calls.len() };
                prop_assert_eq!(batch.rows + batch.rejected.len(), expected);
            }
            Err(BodyRefused::OverBudget(OverBudget::Calls { limit })) => {
                prop_assert!(calls.len() > limit)
            }
            Err(e) => prop_assert!(false, "{e}"),
        }
    }
}

#[test]
fn an_exponential_histogram_with_a_million_buckets_at_the_largest_offset_is_rejected_by_count() {
    let limits = Limits::default();
    let point = ExponentialHistogramDataPoint {
        scale: 0,
        count: 0,
        positive: Some(Buckets {
            offset: i32::MAX,
            bucket_counts: vec![0; 1_000_000],
        }),
        time_unix_nano: NOW_MS as u64 * 1_000_000,
        ..Default::default()
    };
    let request = ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: "latency".into(),
                    data: Some(metric::Data::ExponentialHistogram(ExponentialHistogram {
                        data_points: vec![point],
                        aggregation_temporality: 2,
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let out = otlp_metrics::encode(&request, &ctx(&limits), usize::MAX);
    assert_eq!(out.rows, 0);
    assert_eq!(out.rejected_points, 1);
    assert!(
        out.rejected[0].reason.contains("the limit is 160"),
        "{:?}",
        out.rejected
    );
}

#[test]
fn nan_sums_in_summaries_are_rejected() {
    let limits = Limits::default();
    let request = ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: "rpc".into(),
                    data: Some(metric::Data::Summary(Summary {
                        data_points: vec![SummaryDataPoint {
                            sum: f64::NAN,
                            count: 1,
                            time_unix_nano: NOW_MS as u64 * 1_000_000,
                            ..Default::default()
                        }],
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let out = otlp_metrics::encode(&request, &ctx(&limits), usize::MAX);
    assert_eq!((out.rows, out.rejected_points), (0, 1));
    assert!(out.rejected[0].field.ends_with("sum"), "{:?}", out.rejected);
}
