//! Prometheus remote write 1.0: `POST /v1/prometheus/write`.
//!
//! ```text
//! snappy (block format) protobuf WriteRequest
//!   -> IngestState::admit (charged by the decompressed size, which the block declares)
//!   -> decompress (the declared size is checked against the body limit first)
//!   -> decode (labels are borrowed from the decompressed buffer, not copied)
//!   -> per series: check labels once, encode the series head once (metric::SeriesHead)
//!   -> per sample: skip stale markers and non-finite values, check the time, append a row
//!   -> IngestState::store (metrics writer, ack after insert) -> 204
//! ```
//!
//! Answers follow the spec, with the API's JSON error body on one line (Prometheus
//! logs the first line of an error answer): 204 with an empty body when every
//! sample is stored; 400 for a body that cannot be decoded (`unreadable_body`
//! for snappy, `invalid_json` for protobuf), or when samples are invalid
//! (`no_valid_records`, or `invalid_request` with `accepted` and `rejected` when
//! the valid ones of the same request are stored, so that a sender, which must
//! not retry a 4xx, loses only the bad ones); 413 over a request-wide limit;
//! 415 for a content type or encoding other than protobuf and snappy; 422
//! (`storage_refused`) for rows ClickHouse refuses, which a retry cannot fix;
//! 429 and 503 with `Retry-After`, which Prometheus retries. Retried samples
//! are the same (series, time) points: the table's merges fold them.
//!
//! Remote write 1.0 carries no metric type, so the kind comes from the name:
//! `_total`, `_count`, `_sum` and `_bucket` are counters, the rest gauges (a
//! classic histogram arrives as its `_bucket`/`_sum`/`_count` counter series).
//! Stale markers (the NaN `0x7ff0000000000002`) say a series ended; other NaN
//! and infinite values are what Prometheus stores for an empty summary
//! quantile and the like. Neither is stored, since every other path of the
//! table holds only finite values and KPI sums must stay numbers; both are
//! counted in `hypercare_ingest_records_skipped_total` and are not errors.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::{Bytes, BytesMut};
use prost::Message;

use hypercare_http::auth::{Caller, Scope};
use hypercare_http::body::{BodyError, read_body_as_sent};
use hypercare_http::openapi::KeyChecks;
use hypercare_http::{ApiError, ErrorBody};

use crate::budget::{self, Budget, OverBudget};
use crate::config::Limits;
use crate::error::IngestError;
use crate::event::RequestContext;
use crate::fields;
use crate::metric::{self, MetricKind, PointValue, SeriesHead};
use crate::records::{EncodedBatch, Rejection};
use crate::state::{IngestState, Table};

/// The `signal` label of this protocol's records in the ingest metrics.
pub const SIGNAL: &str = "prometheus_sample";

/// The stale marker: a NaN with this exact bit pattern ends a series.
pub const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

/// `prometheus.WriteRequest` (prompb/remote.proto). Field 3, metric metadata,
/// which Prometheus sends in requests of its own, is skipped by the decoder.
#[derive(Clone, PartialEq, Message)]
pub struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

/// `prometheus.TimeSeries`. Exemplars (3) and native histograms (4) are not
/// part of remote write 1.0 and are skipped by the decoder.
#[derive(Clone, PartialEq, Message)]
pub struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
}

/// `prometheus.Label`. Declared as bytes (the wire format of a string) so that
/// decoding from a `Bytes` buffer borrows them instead of allocating one
/// `String` each; they are checked to be UTF-8 when read.
#[derive(Clone, PartialEq, Message)]
pub struct Label {
    #[prost(bytes = "bytes", tag = "1")]
    pub name: Bytes,
    #[prost(bytes = "bytes", tag = "2")]
    pub value: Bytes,
}

/// `prometheus.Sample`: a value at a time in epoch milliseconds.
#[derive(Clone, Copy, PartialEq, Message)]
pub struct Sample {
    #[prost(double, tag = "1")]
    pub value: f64,
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// Prometheus remote write 1.0: a snappy-compressed protobuf `WriteRequest`.
/// Error bodies are the API's JSON error on one line: Prometheus logs the first line.
#[utoipa::path(post, path = "/v1/prometheus/write", tag = "ingest", security(("bearer" = []), ("basic" = []), ("api_key" = [])),
    params(
        ("Content-Encoding" = String, Header, description = "`snappy`"),
        ("X-Prometheus-Remote-Write-Version" = Option<String>, Header, description = "`0.1.0`"),
    ),
    request_body(description = "Snappy (block format) of a protobuf prometheus.WriteRequest",
        content((hypercare_http::openapi::Binary = "application/x-protobuf"))),
    responses(
        (status = 204, description = "Every sample is stored"),
        (status = 400, description = "Not snappy (`unreadable_body`), not a WriteRequest (`invalid_json`), or samples refused (`no_valid_records`, or `invalid_request` when the others are stored; both list `rejected`)", body = crate::schema::IngestRefusal),
        KeyChecks,
        (status = 413, description = "Over the body or sample limit (`payload_too_large`, `too_many_records`, `amplification_limit`, `larger_than_queue`)", body = ErrorBody),
        (status = 415, description = "Not protobuf, or not snappy (`unsupported_content_type`, `unsupported_encoding`)", body = ErrorBody),
        crate::schema::WriteChecks,
    ))]
#[tracing::instrument(name = "ingest.prometheus_write", skip_all, fields(key = %caller.name()))]
pub(crate) async fn post_write(
    req: HttpRequest,
    payload: web::Payload,
    caller: Caller,
    state: web::Data<IngestState>,
) -> Result<HttpResponse, ApiError> {
    Ok(write(req, payload, caller, state).await?)
}

async fn write(
    req: HttpRequest,
    payload: web::Payload,
    caller: Caller,
    state: web::Data<IngestState>,
) -> Result<HttpResponse, IngestError> {
    caller.authorize(Scope::Ingest)?;
    check_headers(&req)?;
    let limit = state.limits.body(state.limits.max_body_bytes);
    let body = read_body_as_sent(&req, payload, limit).await?;
    // Charged by what it decompresses to, like the bodies of the other routes.
    let decoded_bytes = snap::raw::decompress_len(&body).unwrap_or(body.len());
    let admission = state.admit(&req, &caller, decoded_bytes)?;
    let request = decode(&body, admission.limits(), state.metrics.max_request_bytes())?;
    drop(body);

    let ctx = admission.context();
    let outcome = encode(&request, &ctx)?;
    drop(request);
    state
        .counters
        .skipped(SIGNAL, "stale_marker", outcome.stale_markers);
    state
        .counters
        .skipped(SIGNAL, "not_finite", outcome.not_finite);
    let stored = state
        .store(&admission, &ctx, Table::MetricPoints, SIGNAL, outcome.batch)
        .await?;
    if stored.rejected.is_empty() {
        Ok(HttpResponse::NoContent().finish())
    } else {
        // The valid samples are stored; the sender must not retry the others.
        Err(IngestError::SomeRefused {
            stored: stored.accepted,
            refused: outcome.rejected_samples,
            rejected: stored.rejected,
        })
    }
}

/// The spec's required headers: protobuf content, snappy encoding.
fn check_headers(req: &HttpRequest) -> Result<(), IngestError> {
    let text = |name| {
        req.headers()
            .get(name)
            .map(|v| v.to_str().unwrap_or("").trim().to_ascii_lowercase())
    };
    let content_type = text(header::CONTENT_TYPE).unwrap_or_default();
    let mime = content_type.split(';').next().unwrap_or("").trim();
    // Remote write 2.0 sends `application/x-protobuf;proto=io.prometheus.write.v2.Request`.
    let v2 = content_type.contains("io.prometheus.write.v2");
    if mime != "application/x-protobuf" || v2 {
        return Err(IngestError::UnsupportedContentType {
            found: content_type,
            expected: "application/x-protobuf (remote write 1.0)",
        });
    }
    let encoding = text(header::CONTENT_ENCODING).unwrap_or_default();
    if encoding != "snappy" {
        return Err(IngestError::UnsupportedEncoding {
            found: encoding,
            expected: "snappy (block format), as remote write 1.0 does",
        });
    }
    Ok(())
}

/// What a row adds to its series' labels, at most: times, value, empty
/// histogram columns and the key's name.
pub const ROW_TAIL: usize = 128;

/// Snappy block decompression, refused before allocating when the size the
/// block declares is over `max_body_bytes`; then a walk of the protobuf that
/// counts samples and sizes what decoding and encoding would allocate, refused
/// (413) over `max_records_per_request`, `max_decode_amplification`,
/// `max_encode_amplification` or the queue capacity; then protobuf decoding.
pub fn decode(
    body: &[u8],
    limits: &Limits,
    queue_capacity: usize,
) -> Result<WriteRequest, IngestError> {
    let limit = limits.max_body_bytes;
    let snappy = |e: snap::Error| {
        IngestError::Body(BodyError::Unreadable(format!(
            "it is not valid snappy (block format): {e}"
        )))
    };
    let protobuf = |reason: String| IngestError::Undecodable {
        what: "protobuf WriteRequest",
        reason,
    };
    let size = snap::raw::decompress_len(body).map_err(snappy)?;
    if size > limit {
        return Err(BodyError::TooLarge { limit }.into());
    }
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(snappy)?;
    let shape =
        crate::wire::remote_write_shape(&raw, ROW_TAIL).map_err(|e| protobuf(e.to_string()))?;
    let budget = Budget::for_request(limits, raw.len(), queue_capacity);
    budget.check_records(shape.records)?;
    budget::check_decoded(limits, shape.decoded_bytes, raw.len())?;
    budget.check_encoded(shape.encoded_bytes)?;
    WriteRequest::decode(Bytes::from(raw)).map_err(|e| protobuf(e.to_string()))
}

/// The rows of a request and what was left out.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Accepted samples as rows; `rejected` names the series (`index`) and why.
    pub batch: EncodedBatch,
    /// Samples of rejected series plus rejected samples.
    pub rejected_samples: usize,
    pub stale_markers: u64,
    pub not_finite: u64,
}

/// Checks every series and sample of `request` and encodes the valid samples as
/// `metric_points` rows.
/// More samples than `max_records_per_request` refuse the request whole
/// ([`decode`] refuses them before decoding already).
pub fn encode(request: &WriteRequest, ctx: &RequestContext) -> Result<Outcome, OverBudget> {
    let samples: usize = request.timeseries.iter().map(|s| s.samples.len()).sum();
    let limit = ctx.limits.max_records_per_request;
    if samples > limit {
        return Err(OverBudget::Records { limit });
    }
    let mut outcome = Outcome {
        batch: EncodedBatch {
            data: BytesMut::with_capacity(samples * 96),
            ..EncodedBatch::default()
        },
        ..Outcome::default()
    };
    for (index, series) in request.timeseries.iter().enumerate() {
        let head = match series_head(series, ctx) {
            Ok(head) => head,
            Err(mut rejection) => {
                rejection.index = index;
                outcome.batch.rejected.push(rejection);
                outcome.rejected_samples += series.samples.len();
                continue;
            }
        };
        for (i, sample) in series.samples.iter().enumerate() {
            if sample.value.to_bits() == STALE_NAN {
                outcome.stale_markers += 1;
                continue;
            }
            if !sample.value.is_finite() {
                outcome.not_finite += 1;
                continue;
            }
            let time_ms = match fields::epoch_ms_time(
                "timestamp",
                sample.timestamp,
                ctx.received_ms,
                ctx.limits,
            ) {
                Ok(ms) => ms,
                Err(mut rejection) => {
                    rejection.index = index;
                    rejection.field = format!("samples[{i}].timestamp");
                    outcome.batch.rejected.push(rejection);
                    outcome.rejected_samples += 1;
                    continue;
                }
            };
            head.write_point(
                PointValue {
                    time_ms,
                    value: sample.value,
                    histogram: None,
                },
                ctx,
                &mut outcome.batch.data,
            );
            outcome.batch.rows += 1;
        }
    }
    Ok(outcome)
}

/// The kind of a remote-write series, from its name (1.0 carries no type).
pub fn kind_of(name: &str) -> MetricKind {
    const COUNTER_SUFFIXES: [&str; 4] = ["_total", "_count", "_sum", "_bucket"];
    if COUNTER_SUFFIXES.iter().any(|s| name.ends_with(s)) {
        MetricKind::Counter
    } else {
        MetricKind::Gauge
    }
}

/// Checks a series' labels and encodes what all its rows share.
fn series_head(series: &TimeSeries, ctx: &RequestContext) -> Result<SeriesHead, Rejection> {
    let limits = ctx.limits;
    let mut name = None;
    let mut labels: Vec<(&str, &str)> = Vec::with_capacity(series.labels.len());
    for label in &series.labels {
        let key = std::str::from_utf8(&label.name)
            .map_err(|_| Rejection::new("labels", "invalid_value", "a label name is not UTF-8"))?;
        let field = || format!("labels.{key}");
        let value = std::str::from_utf8(&label.value)
            .map_err(|_| Rejection::new(field(), "invalid_value", "is not UTF-8"))?;
        if key == "__name__" {
            name = Some(value);
            continue;
        }
        if !is_label_name(key) {
            return Err(Rejection::new(
                format!("labels.{}", key.escape_debug()),
                "invalid_value",
                "is not a label name: [a-zA-Z_][a-zA-Z0-9_]*",
            ));
        }
        // An empty value is the same as no label, in Prometheus' data model.
        if value.is_empty() {
            continue;
        }
        fields::check_length(&field(), key, limits.max_name_length)?;
        fields::check_length(&field(), value, limits.max_value_length)?;
        labels.push((key, value));
    }
    let name = name.ok_or_else(|| Rejection::missing("labels.__name__"))?;
    // Every row of the series repeats its labels.
    let bytes = name.len() + labels.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
    if bytes > limits.max_series_bytes {
        return Err(Rejection::new(
            "labels",
            "too_large",
            format!(
                "hold {bytes} bytes; the limit is max_series_bytes = {}",
                limits.max_series_bytes
            ),
        ));
    }
    fields::check_name("labels.__name__", name, limits)?;
    metric::check_metric_name(name).map_err(|mut r| {
        r.field = "labels.__name__".into();
        r
    })?;
    if labels.len() > limits.max_properties {
        return Err(Rejection::new(
            "labels",
            "too_many",
            format!(
                "has {} labels; the limit is {}",
                labels.len(),
                limits.max_properties
            ),
        ));
    }
    // The spec says senders sort labels; sorting again costs little when they did.
    labels.sort_unstable_by(|a, b| a.0.cmp(b.0));
    if let Some(pair) = labels.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(Rejection::new(
            format!("labels.{}", pair[0].0),
            "invalid_value",
            "is given twice",
        ));
    }
    Ok(SeriesHead::new(name, kind_of(name), &labels))
}

fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW_MS: i64 = 1_795_341_600_000;

    fn label(name: &str, value: &str) -> Label {
        Label {
            name: Bytes::copy_from_slice(name.as_bytes()),
            value: Bytes::copy_from_slice(value.as_bytes()),
        }
    }

    fn series(labels: &[(&str, &str)], samples: &[(f64, i64)]) -> TimeSeries {
        TimeSeries {
            labels: labels.iter().map(|(k, v)| label(k, v)).collect(),
            samples: samples
                .iter()
                .map(|&(value, timestamp)| Sample { value, timestamp })
                .collect(),
        }
    }

    fn run(request: &WriteRequest) -> Outcome {
        let limits = Limits::default();
        let ctx = RequestContext {
            limits: &limits,
            received_ms: NOW_MS,
            api_key: "test",
            late_hours: Default::default(),
        };
        encode(request, &ctx).unwrap()
    }

    fn compress(request: &WriteRequest) -> Vec<u8> {
        snap::raw::Encoder::new()
            .compress_vec(&request.encode_to_vec())
            .unwrap()
    }

    #[test]
    fn a_request_survives_snappy_and_protobuf() {
        let request = WriteRequest {
            timeseries: vec![series(
                &[("__name__", "up"), ("job", "a")],
                &[(1.0, NOW_MS)],
            )],
        };
        let decoded = decode(&compress(&request), &Limits::default(), 1 << 30).unwrap();
        assert_eq!(decoded, request);
    }

    #[test]
    fn bad_snappy_truncated_protobuf_and_oversize_are_refused() {
        assert!(matches!(
            decode(b"\xff\xff\xff\xff\xff\xff", &Limits::default(), 1 << 30),
            Err(IngestError::Body(BodyError::Unreadable(_)))
        ));
        let request = WriteRequest {
            timeseries: vec![series(&[("__name__", "up")], &[(1.0, NOW_MS)])],
        };
        let bytes = request.encode_to_vec();
        let truncated = snap::raw::Encoder::new()
            .compress_vec(&bytes[..bytes.len() - 3])
            .unwrap();
        assert!(matches!(
            decode(&truncated, &Limits::default(), 1 << 30),
            Err(IngestError::Undecodable { .. })
        ));
        assert!(matches!(
            decode(
                &compress(&request),
                &Limits {
                    max_body_bytes: 4,
                    ..Limits::default()
                },
                1 << 30
            ),
            Err(IngestError::Body(BodyError::TooLarge { .. }))
        ));
    }

    #[test]
    fn stale_markers_and_nan_are_skipped_and_counted() {
        let request = WriteRequest {
            timeseries: vec![series(
                &[("__name__", "up")],
                &[
                    (1.0, NOW_MS),
                    (f64::from_bits(STALE_NAN), NOW_MS + 1),
                    (f64::NAN, NOW_MS + 2),
                    (f64::INFINITY, NOW_MS + 3),
                ],
            )],
        };
        let outcome = run(&request);
        assert_eq!(outcome.batch.rows, 1);
        assert_eq!((outcome.stale_markers, outcome.not_finite), (1, 2));
        assert!(outcome.batch.rejected.is_empty());
    }

    #[test]
    fn bad_series_and_samples_are_rejected_and_the_rest_kept() {
        let request = WriteRequest {
            timeseries: vec![
                series(&[("job", "a")], &[(1.0, NOW_MS)]),
                series(&[("__name__", "x"), ("bad-label", "1")], &[(1.0, NOW_MS)]),
                series(
                    &[("__name__", "x"), ("a", "1"), ("a", "2")],
                    &[(1.0, NOW_MS)],
                ),
                series(&[("__name__", "9x")], &[(1.0, NOW_MS)]),
                series(&[("__name__", "ok")], &[(1.0, NOW_MS), (2.0, 1_000)]),
            ],
        };
        let outcome = run(&request);
        assert_eq!(outcome.batch.rows, 1);
        assert_eq!(outcome.rejected_samples, 5);
        let fields: Vec<(usize, &str)> = outcome
            .batch
            .rejected
            .iter()
            .map(|r| (r.index, r.field.as_str()))
            .collect();
        assert_eq!(
            fields,
            [
                (0, "labels.__name__"),
                (1, "labels.bad-label"),
                (2, "labels.a"),
                (3, "labels.__name__"),
                (4, "samples[1].timestamp")
            ]
        );
    }

    #[test]
    fn kinds_come_from_the_name_suffix() {
        assert_eq!(kind_of("http_requests_total"), MetricKind::Counter);
        assert_eq!(kind_of("rpc_duration_seconds_bucket"), MetricKind::Counter);
        assert_eq!(kind_of("rpc_duration_seconds_sum"), MetricKind::Counter);
        assert_eq!(kind_of("rpc_duration_seconds_count"), MetricKind::Counter);
        assert_eq!(kind_of("up"), MetricKind::Gauge);
        assert_eq!(kind_of("total_gauge"), MetricKind::Gauge);
    }

    #[test]
    fn a_series_gets_the_id_the_json_path_gives_it() {
        let limits = Limits::default();
        let ctx = RequestContext {
            limits: &limits,
            received_ms: NOW_MS,
            api_key: "test",
            late_hours: Default::default(),
        };
        let head = series_head(
            &series(&[("__name__", "m"), ("b", "2"), ("a", "1")], &[]),
            &ctx,
        )
        .unwrap();
        assert_eq!(
            head.id,
            metric::series_id("m", &[("a", "1".to_owned()), ("b", "2".to_owned())], &[])
        );
    }
}
