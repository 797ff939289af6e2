//! A read-only walk over protobuf wire bytes, to count records and estimate
//! what decoding would allocate before any of it is allocated.
//!
//! prost decodes a whole message at once; on the wire an empty log record or
//! label is 2 bytes and a decoded one is tens to hundreds, so a 10 MB body can
//! become gigabytes. The walk follows a small schema of the messages that nest
//! (OTLP metrics and logs, Prometheus `WriteRequest`), adds the in-memory size
//! of every message it meets and the bytes of every string and array, and
//! counts records; it never allocates. Fields it does not know are skipped,
//! as a decoder would.

use std::mem::size_of;

use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    Exemplar, ExponentialHistogramDataPoint, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, SummaryDataPoint, exponential_histogram_data_point::Buckets,
    summary_data_point::ValueAtQuantile,
};
use opentelemetry_proto::tonic::resource::v1::Resource;

/// Nesting deeper than this is refused (prost's own limit is 100).
const MAX_DEPTH: usize = 64;

/// The body is not protobuf the walk can follow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct WireError(pub &'static str);

/// What a body holds, as far as its cost goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Shape {
    /// Log records, data points or samples.
    pub records: usize,
    /// Bytes decoding would allocate, about.
    pub decoded_bytes: usize,
    /// Remote write: bytes of rows encoding would write at most, given
    /// `row_tail` bytes per row beside the series' labels.
    pub encoded_bytes: usize,
}

/// The message types the walk knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    LogsRequest,
    ResourceLogs,
    ScopeLogs,
    LogRecord,
    MetricsRequest,
    ResourceMetrics,
    ScopeMetrics,
    Metric,
    /// Gauge, Sum, Histogram, ExponentialHistogram, Summary: field 1 holds points.
    Points(Point),
    Point(Point),
    Buckets,
    Quantile,
    Exemplar,
    Resource,
    Scope,
    KeyValue,
    AnyValue,
    ArrayValue,
    KvList,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Point {
    Number,
    Histogram,
    Exponential,
    Summary,
}

impl Kind {
    fn size(self) -> usize {
        match self {
            Kind::LogsRequest | Kind::MetricsRequest => 24,
            Kind::ResourceLogs => size_of::<ResourceLogs>(),
            Kind::ScopeLogs => size_of::<ScopeLogs>(),
            Kind::LogRecord => size_of::<LogRecord>(),
            Kind::ResourceMetrics => size_of::<ResourceMetrics>(),
            Kind::ScopeMetrics => size_of::<ScopeMetrics>(),
            Kind::Metric => size_of::<Metric>(),
            Kind::Points(_) => 32,
            Kind::Point(Point::Number) => size_of::<NumberDataPoint>(),
            Kind::Point(Point::Histogram) => size_of::<HistogramDataPoint>(),
            Kind::Point(Point::Exponential) => size_of::<ExponentialHistogramDataPoint>(),
            Kind::Point(Point::Summary) => size_of::<SummaryDataPoint>(),
            Kind::Buckets => size_of::<Buckets>(),
            Kind::Quantile => size_of::<ValueAtQuantile>(),
            Kind::Exemplar => size_of::<Exemplar>(),
            Kind::Resource => size_of::<Resource>(),
            Kind::Scope => size_of::<InstrumentationScope>(),
            Kind::KeyValue => size_of::<KeyValue>(),
            Kind::AnyValue => size_of::<AnyValue>(),
            Kind::ArrayValue => size_of::<ArrayValue>(),
            Kind::KvList => size_of::<KeyValueList>(),
        }
    }

    fn is_record(self) -> bool {
        matches!(self, Kind::LogRecord | Kind::Point(_))
    }

    /// The message type of a length-delimited field, if it is a message.
    fn child(self, field: u32) -> Option<Kind> {
        use Kind as K;
        Some(match (self, field) {
            (K::LogsRequest, 1) => K::ResourceLogs,
            (K::ResourceLogs, 1) | (K::ResourceMetrics, 1) => K::Resource,
            (K::ResourceLogs, 2) => K::ScopeLogs,
            (K::ScopeLogs, 1) | (K::ScopeMetrics, 1) => K::Scope,
            (K::ScopeLogs, 2) => K::LogRecord,
            (K::LogRecord, 5) => K::AnyValue,
            (K::LogRecord, 6) => K::KeyValue,
            (K::MetricsRequest, 1) => K::ResourceMetrics,
            (K::ResourceMetrics, 2) => K::ScopeMetrics,
            (K::ScopeMetrics, 2) => K::Metric,
            (K::Metric, 5) | (K::Metric, 7) => K::Points(Point::Number),
            (K::Metric, 9) => K::Points(Point::Histogram),
            (K::Metric, 10) => K::Points(Point::Exponential),
            (K::Metric, 11) => K::Points(Point::Summary),
            (K::Metric, 12) => K::KeyValue,
            (K::Points(p), 1) => K::Point(p),
            (K::Point(Point::Number), 7) => K::KeyValue,
            (K::Point(Point::Number), 5) => K::Exemplar,
            (K::Point(Point::Histogram), 9) => K::KeyValue,
            (K::Point(Point::Histogram), 8) => K::Exemplar,
            (K::Point(Point::Exponential), 1) => K::KeyValue,
            (K::Point(Point::Exponential), 8) | (K::Point(Point::Exponential), 9) => K::Buckets,
            (K::Point(Point::Exponential), 11) => K::Exemplar,
            (K::Point(Point::Summary), 7) => K::KeyValue,
            (K::Point(Point::Summary), 6) => K::Quantile,
            (K::Exemplar, 7) => K::KeyValue,
            (K::Resource, 1) | (K::Scope, 3) => K::KeyValue,
            (K::KeyValue, 2) => K::AnyValue,
            (K::AnyValue, 5) => K::ArrayValue,
            (K::AnyValue, 6) => K::KvList,
            (K::ArrayValue, 1) => K::AnyValue,
            (K::KvList, 1) => K::KeyValue,
            _ => return None,
        })
    }

    /// Bytes a length-delimited field that is not a message decodes to, per
    /// wire byte: packed varints (exponential bucket counts) widen to 8 bytes
    /// each; strings, bytes and packed fixed-width numbers stay as they are.
    fn leaf_factor(self, field: u32) -> usize {
        if self == Kind::Buckets && field == 2 {
            8
        } else {
            1
        }
    }
}

/// Walks an OTLP export request of `kind` (`LogsRequest` or `MetricsRequest`).
pub fn shape(body: &[u8], kind: Kind) -> Result<Shape, WireError> {
    let mut shape = Shape {
        decoded_bytes: kind.size(),
        ..Shape::default()
    };
    walk(body, kind, 0, &mut shape)?;
    Ok(shape)
}

fn walk(buf: &[u8], kind: Kind, depth: usize, shape: &mut Shape) -> Result<(), WireError> {
    if depth > MAX_DEPTH {
        return Err(WireError("messages nest too deeply"));
    }
    for field in Fields::new(buf) {
        let (number, value) = field?;
        match value {
            Value::Len(bytes) => match kind.child(number) {
                Some(child) => {
                    shape.decoded_bytes = shape.decoded_bytes.saturating_add(child.size());
                    if child.is_record() {
                        shape.records += 1;
                    }
                    walk(bytes, child, depth + 1, shape)?;
                }
                None => {
                    let grown = bytes.len().saturating_mul(kind.leaf_factor(number));
                    shape.decoded_bytes = shape.decoded_bytes.saturating_add(grown);
                }
            },
            // A scalar is inside its message's size, unless it is one element
            // of an unpacked repeated field.
            Value::Scalar => shape.decoded_bytes = shape.decoded_bytes.saturating_add(8),
        }
    }
    Ok(())
}

/// Walks a Prometheus `WriteRequest`: series (1) of labels (1) and samples (2).
/// `row_tail` is what a row adds to its series' labels (times, value, key).
pub fn remote_write_shape(body: &[u8], row_tail: usize) -> Result<Shape, WireError> {
    // prost's types: TimeSeries is two Vecs, Label two Bytes, Sample two numbers.
    const SERIES: usize = 48;
    const LABEL: usize = 64;
    const SAMPLE: usize = 16;
    let mut shape = Shape::default();
    for field in Fields::new(body) {
        let (number, value) = field?;
        let (1, Value::Len(series)) = (number, value) else {
            continue;
        };
        shape.decoded_bytes = shape.decoded_bytes.saturating_add(SERIES);
        // What SeriesHead writes: each string with a length prefix, and fixed columns.
        let mut head = 64usize;
        let mut samples = 0usize;
        for field in Fields::new(series) {
            let (number, value) = field?;
            match (number, value) {
                (1, Value::Len(label)) => {
                    shape.decoded_bytes = shape.decoded_bytes.saturating_add(LABEL);
                    head = head.saturating_add(label.len() + 20);
                    // Label fields are Bytes slices of the body: nothing more.
                    for f in Fields::new(label) {
                        f?;
                    }
                }
                (2, Value::Len(sample)) => {
                    shape.decoded_bytes = shape.decoded_bytes.saturating_add(SAMPLE);
                    samples += 1;
                    for f in Fields::new(sample) {
                        f?;
                    }
                }
                _ => {}
            }
        }
        shape.records = shape.records.saturating_add(samples);
        let rows = samples.saturating_mul(head.saturating_add(row_tail));
        shape.encoded_bytes = shape.encoded_bytes.saturating_add(rows);
    }
    Ok(shape)
}

/// A field's value, as far as the walk needs it.
enum Value<'a> {
    Scalar,
    Len(&'a [u8]),
}

/// The fields of one message.
struct Fields<'a> {
    buf: &'a [u8],
    failed: bool,
}

impl<'a> Fields<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { buf, failed: false }
    }

    fn varint(&mut self) -> Result<u64, WireError> {
        let mut value = 0u64;
        for i in 0..10 {
            let (&byte, rest) = self
                .buf
                .split_first()
                .ok_or(WireError("a varint is cut short"))?;
            self.buf = rest;
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte < 0x80 {
                return Ok(value);
            }
        }
        Err(WireError("a varint is longer than 10 bytes"))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if n > self.buf.len() {
            return Err(WireError("a field is longer than its message"));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn next_field(&mut self) -> Result<(u32, Value<'a>), WireError> {
        let key = self.varint()?;
        let number =
            u32::try_from(key >> 3).map_err(|_| WireError("a field number is too large"))?;
        if number == 0 {
            return Err(WireError("field number 0"));
        }
        let value = match key & 7 {
            0 => {
                self.varint()?;
                Value::Scalar
            }
            1 => {
                self.take(8)?;
                Value::Scalar
            }
            5 => {
                self.take(4)?;
                Value::Scalar
            }
            2 => {
                let len = usize::try_from(self.varint()?)
                    .map_err(|_| WireError("a length is too large"))?;
                Value::Len(self.take(len)?)
            }
            _ => {
                return Err(WireError(
                    "a field has a wire type OTLP and remote write do not use",
                ));
            }
        };
        Ok((number, value))
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u32, Value<'a>), WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.buf.is_empty() {
            return None;
        }
        let field = self.next_field();
        self.failed = field.is_err();
        Some(field)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use prost::Message;

    #[test]
    fn empty_log_records_are_counted_and_their_memory_estimated() {
        let request = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs {
                    log_records: vec![LogRecord::default(); 1000],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let body = request.encode_to_vec();
        let shape = shape(&body, Kind::LogsRequest).unwrap();
        assert_eq!(shape.records, 1000);
        assert!(shape.decoded_bytes >= 1000 * size_of::<LogRecord>());
        // About 2 wire bytes each.
        assert!(body.len() < 2100, "{}", body.len());
    }

    #[test]
    fn truncated_and_garbage_bodies_are_errors_not_panics() {
        assert!(shape(&[0x0a, 0x05, 0x01], Kind::LogsRequest).is_err());
        assert!(shape(&[0xff; 11], Kind::MetricsRequest).is_err());
        assert!(shape(&[0x0b], Kind::MetricsRequest).is_err());
        assert!(remote_write_shape(&[0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f], 60).is_err());
    }
}
