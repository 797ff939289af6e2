//! Technical metric points: the JSON shape, its checks, and its row in
//! `metric_points`.
//!
//! ```json
//! {"name": "http_requests", "kind": "counter", "labels": {"service": "checkout", "status": "500"},
//!  "timestamp": "2026-11-22T09:30:00Z", "value": 1234}
//! {"name": "cpu_utilisation", "kind": "gauge", "labels": {"host": "web-1"}, "value": 0.73}
//! {"name": "http_request_duration_seconds", "kind": "histogram", "labels": {"service": "checkout"},
//!  "bounds": [0.1, 0.5, 1], "counts": [80, 15, 4, 1], "sum": 21.7, "count": 100}
//! ```
//!
//! Histograms use the OpenTelemetry explicit-bucket model: `counts` has one more
//! element than `bounds` and counts each bucket on its own (not cumulatively); the
//! last bucket holds what is above the last bound. Counters are monotonic totals
//! since the process started (cumulative), as Prometheus and OTLP send them.

use bytes::BytesMut;
use hypercare_storage::rowbinary::RowBinaryExt;
use xxhash_rust::xxh3::Xxh3;

use crate::event::RequestContext;
use crate::fields::{self, Scalar};
use crate::records::{Rejection, Value};

/// Series columns first (encoded once per series by [`SeriesHead`]), then the
/// point's own.
pub const INSERT_SQL: &str = "INSERT INTO metric_points (name, kind, series_id, label_keys, \
    label_values, temporality, unit, resource_keys, resource_values, scope_name, scope_version, \
    timestamp, timestamp_ms, received_at, value, hist_bounds, hist_counts, hist_sum, hist_count, \
    api_key) FORMAT RowBinary";

pub const TABLE: &str = "metric_points";

const FIELDS: [&str; 9] = [
    "name",
    "kind",
    "labels",
    "timestamp",
    "value",
    "bounds",
    "counts",
    "sum",
    "count",
];

/// The `kind` column's Enum8 values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i8)]
pub enum MetricKind {
    Gauge = 1,
    Counter = 2,
    Histogram = 3,
}

/// The `temporality` column's Enum8 values: how a counter or histogram point
/// relates to the previous one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i8)]
pub enum Temporality {
    /// A total since the series started: queries take differences.
    Cumulative = 1,
    /// The increase since the previous point: queries sum.
    Delta = 2,
}

/// The identity of a series: a stable hash of the name, the sorted labels and
/// the resource attributes (OTLP only; none for the other protocols).
pub fn series_id<K: AsRef<str>, V: AsRef<str>>(
    name: &str,
    labels: &[(K, V)],
    resource: &[(String, String)],
) -> u64 {
    let mut hasher = Xxh3::new();
    hasher.update(name.as_bytes());
    for (key, value) in labels {
        // Separators that cannot appear in UTF-8 keep ("a","bc") apart from ("ab","c").
        hasher.update(&[0xff]);
        hasher.update(key.as_ref().as_bytes());
        hasher.update(&[0xfe]);
        hasher.update(value.as_ref().as_bytes());
    }
    if !resource.is_empty() {
        hasher.update(&[0xfd]);
        for (key, value) in resource {
            hasher.update(&[0xff]);
            hasher.update(key.as_bytes());
            hasher.update(&[0xfe]);
            hasher.update(value.as_bytes());
        }
    }
    hasher.digest()
}

/// What OTLP says of a series beyond its name and labels.
#[derive(Debug, Clone, Copy)]
pub struct SeriesContext<'a> {
    pub temporality: Temporality,
    pub unit: &'a str,
    /// Resource attributes, sorted by key, no key twice.
    pub resource: &'a [(String, String)],
    pub scope_name: &'a str,
    pub scope_version: &'a str,
}

impl SeriesContext<'_> {
    /// Cumulative, no unit, resource or scope: `/v1/metrics` and remote write.
    pub const PLAIN: SeriesContext<'static> = SeriesContext {
        temporality: Temporality::Cumulative,
        unit: "",
        resource: &[],
        scope_name: "",
        scope_version: "",
    };
}

/// The start of every `metric_points` row of one series: name, kind, series id,
/// labels and the OTLP series context, encoded once. Together with [`SeriesHead::write_point`] this is the
/// one encoder of the table's rows, shared by every protocol that stores points
/// (`/v1/metrics` JSON, OTLP, Prometheus remote write); a protocol that sends many
/// points per series (remote write) encodes the labels once per series.
#[derive(Debug, Clone)]
pub struct SeriesHead {
    bytes: BytesMut,
    pub id: u64,
}

/// What a point adds to its series: time and values.
#[derive(Debug, Clone, Copy)]
pub struct PointValue<'a> {
    /// Epoch milliseconds, already checked against the limits.
    pub time_ms: i64,
    /// The value of a gauge or counter; 0 for a histogram.
    pub value: f64,
    pub histogram: Option<&'a Histogram>,
}

impl SeriesHead {
    /// `labels` must be sorted by key, without duplicate keys.
    pub fn new<K: AsRef<str>, V: AsRef<str>>(
        name: &str,
        kind: MetricKind,
        labels: &[(K, V)],
    ) -> Self {
        Self::with_context(name, kind, labels, &SeriesContext::PLAIN)
    }

    /// A series with its temporality, unit, resource and scope (OTLP).
    pub fn with_context<K: AsRef<str>, V: AsRef<str>>(
        name: &str,
        kind: MetricKind,
        labels: &[(K, V)],
        context: &SeriesContext,
    ) -> Self {
        let id = series_id(name, labels, context.resource);
        let mut bytes = BytesMut::with_capacity(
            48 + name.len()
                + labels
                    .iter()
                    .map(|(k, v)| k.as_ref().len() + v.as_ref().len() + 2)
                    .sum::<usize>(),
        );
        bytes.put_rb_str(name);
        bytes.extend_from_slice(&[kind as i8 as u8]);
        bytes.extend_from_slice(&id.to_le_bytes());
        bytes.put_rb_str_array(labels.iter().map(|(k, _)| k.as_ref()));
        bytes.put_rb_str_array(labels.iter().map(|(_, v)| v.as_ref()));
        bytes.extend_from_slice(&[context.temporality as i8 as u8]);
        bytes.put_rb_str(context.unit);
        bytes.put_rb_str_array(context.resource.iter().map(|(k, _)| k.as_str()));
        bytes.put_rb_str_array(context.resource.iter().map(|(_, v)| v.as_str()));
        bytes.put_rb_str(context.scope_name);
        bytes.put_rb_str(context.scope_version);
        Self { bytes, id }
    }

    /// Appends one row of this series to `out`.
    pub fn write_point(&self, point: PointValue, ctx: &RequestContext, out: &mut BytesMut) {
        let empty = Histogram::default();
        let histogram = point.histogram.unwrap_or(&empty);
        let (seconds, millis) = fields::split_ms(point.time_ms);
        let (received_seconds, _) = fields::split_ms(ctx.received_ms);
        out.extend_from_slice(&self.bytes);
        out.put_rb_datetime(seconds);
        out.extend_from_slice(&millis.to_le_bytes());
        out.put_rb_datetime(received_seconds);
        out.extend_from_slice(&point.value.to_le_bytes());
        out.put_rb_f64_array(histogram.bounds.iter().copied());
        out.put_rb_u64_array(histogram.counts.iter().copied());
        out.extend_from_slice(&histogram.sum.to_le_bytes());
        out.extend_from_slice(&histogram.count.to_le_bytes());
        out.put_rb_str(ctx.api_key);
    }
}

/// Checks one metric point and appends its row to `out`, or says why it is rejected.
pub fn encode(record: &Value, ctx: &RequestContext, out: &mut BytesMut) -> Result<(), Rejection> {
    let [
        name,
        kind,
        labels,
        timestamp,
        value,
        bounds,
        counts,
        sum,
        count,
    ] = fields::known_fields(record, FIELDS, "a metric point")?;
    let limits = ctx.limits;
    let name = fields::name(
        "name",
        name.ok_or_else(|| Rejection::missing("name"))?,
        limits,
    )?;
    check_metric_name(name)?;
    let kind = match kind.ok_or_else(|| Rejection::missing("kind"))? {
        Value::Str(s) if s == "gauge" => MetricKind::Gauge,
        Value::Str(s) if s == "counter" => MetricKind::Counter,
        Value::Str(s) if s == "histogram" => MetricKind::Histogram,
        Value::Str(s) => {
            return Err(Rejection::new(
                "kind",
                "invalid_value",
                format!("`{s}` is not a kind: use gauge, counter or histogram"),
            ));
        }
        other => return Err(Rejection::invalid_type("kind", "a string", other)),
    };
    let labels = match labels {
        Some(map) => sorted_labels(fields::flat_map("labels", map, limits)?)?,
        None => Vec::new(),
    };
    let label_bytes = name.len() + labels.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
    if label_bytes > limits.max_series_bytes {
        return Err(Rejection::new(
            "labels",
            "too_large",
            format!(
                "hold {label_bytes} bytes with the name; the limit is max_series_bytes = {}",
                limits.max_series_bytes
            ),
        ));
    }
    let time_ms = fields::event_time(timestamp, None, ctx.received_ms, limits)?;

    let mut histogram = Histogram::default();
    let value = match kind {
        MetricKind::Gauge | MetricKind::Counter => {
            for (field, present) in [
                ("bounds", bounds),
                ("counts", counts),
                ("sum", sum),
                ("count", count),
            ] {
                if present.is_some() {
                    return Err(Rejection::new(
                        field,
                        "invalid_value",
                        "is only for histograms",
                    ));
                }
            }
            let v = fields::number("value", value.ok_or_else(|| Rejection::missing("value"))?)?;
            if kind == MetricKind::Counter && v < 0.0 {
                return Err(Rejection::new(
                    "value",
                    "invalid_value",
                    "a counter must not be negative",
                ));
            }
            v
        }
        MetricKind::Histogram => {
            if value.is_some() {
                return Err(Rejection::new(
                    "value",
                    "invalid_value",
                    "is not for histograms: give bounds, counts, sum and count",
                ));
            }
            histogram = Histogram::check(bounds, counts, sum, count, limits.max_histogram_buckets)?;
            0.0
        }
    };

    let histogram = (kind == MetricKind::Histogram).then_some(&histogram);
    SeriesHead::new(name, kind, &labels).write_point(
        PointValue {
            time_ms,
            value,
            histogram,
        },
        ctx,
        out,
    );
    Ok(())
}

/// A histogram's `count` must be the sum of its buckets.
pub fn check_total(counts: &[u64], count: u64) -> Result<(), Rejection> {
    let total: u64 = counts.iter().sum();
    if total != count {
        return Err(Rejection::new(
            "count",
            "invalid_value",
            format!("is {count} but the bucket counts add up to {total}"),
        ));
    }
    Ok(())
}

/// Prometheus names plus the dots and slashes OpenTelemetry names use.
pub fn check_metric_name(name: &str) -> Result<(), Rejection> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':');
    let rest_ok =
        chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '.' | '/' | '-'));
    if first_ok && rest_ok {
        Ok(())
    } else {
        Err(Rejection::new(
            "name",
            "invalid_value",
            "must start with a letter, `_` or `:` and hold only letters, digits and `_ : . / -`",
        ))
    }
}

/// Labels sorted by key with values as strings (numbers and bools are written as
/// JSON would write them), so that the same series always hashes the same.
fn sorted_labels<'v>(map: Vec<(&'v str, Scalar<'v>)>) -> Result<Vec<(&'v str, String)>, Rejection> {
    let mut labels: Vec<(&str, String)> = map
        .into_iter()
        .map(|(k, v)| {
            let value = match v {
                Scalar::Str(s) => s.to_owned(),
                Scalar::Num(n) if n.fract() == 0.0 && n.abs() < 1e15 => (n as i64).to_string(),
                Scalar::Num(n) => n.to_string(),
                Scalar::Bool(b) => b.to_string(),
            };
            (k, value)
        })
        .collect();
    labels.sort_unstable_by(|a, b| a.0.cmp(b.0));
    if let Some(pair) = labels.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(Rejection::new(
            format!("labels.{}", pair[0].0),
            "invalid_value",
            "is given twice",
        ));
    }
    Ok(labels)
}

/// An explicit-bucket histogram point (see the module docs).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Histogram {
    /// Upper bounds, strictly increasing.
    pub bounds: Vec<f64>,
    /// Per-bucket (not cumulative) counts; one more than `bounds`.
    pub counts: Vec<u64>,
    pub sum: f64,
    /// The sum of `counts`.
    pub count: u64,
}

impl Histogram {
    fn array<'v, 'a>(
        field: &str,
        value: Option<&'v Value<'a>>,
    ) -> Result<&'v [Value<'a>], Rejection> {
        match value.ok_or_else(|| Rejection::missing(field))? {
            Value::Array(items) => Ok(items),
            other => Err(Rejection::invalid_type(field, "an array of numbers", other)),
        }
    }

    fn check(
        bounds: Option<&Value>,
        counts: Option<&Value>,
        sum: Option<&Value>,
        count: Option<&Value>,
        max_buckets: usize,
    ) -> Result<Self, Rejection> {
        let bounds: Vec<f64> = Self::array("bounds", bounds)?
            .iter()
            .enumerate()
            .map(|(i, v)| fields::number(&format!("bounds[{i}]"), v))
            .collect::<Result<_, _>>()?;
        if bounds.len() + 1 > max_buckets {
            return Err(Rejection::new(
                "bounds",
                "too_many",
                format!(
                    "gives {} buckets; the limit is {max_buckets}",
                    bounds.len() + 1
                ),
            ));
        }
        if let Some(i) = bounds.windows(2).position(|w| w[0] >= w[1]) {
            return Err(Rejection::new(
                format!("bounds[{}]", i + 1),
                "invalid_value",
                "bounds must increase strictly",
            ));
        }
        let counts: Vec<u64> = Self::array("counts", counts)?
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::UInt(n) => Ok(*n),
                Value::Int(n) if *n >= 0 => Ok(*n as u64),
                other => Err(Rejection::invalid_type(
                    &format!("counts[{i}]"),
                    "a non-negative integer",
                    other,
                )),
            })
            .collect::<Result<_, _>>()?;
        if counts.len() != bounds.len() + 1 {
            return Err(Rejection::new(
                "counts",
                "invalid_value",
                format!(
                    "has {} buckets; {} bounds make {} buckets (the last one is above the last bound)",
                    counts.len(),
                    bounds.len(),
                    bounds.len() + 1
                ),
            ));
        }
        let sum = fields::number("sum", sum.ok_or_else(|| Rejection::missing("sum"))?)?;
        let count = match count.ok_or_else(|| Rejection::missing("count"))? {
            Value::UInt(n) => *n,
            Value::Int(n) if *n >= 0 => *n as u64,
            other => {
                return Err(Rejection::invalid_type(
                    "count",
                    "a non-negative integer",
                    other,
                ));
            }
        };
        check_total(&counts, count)?;
        Ok(Self {
            bounds,
            counts,
            sum,
            count,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Limits;

    fn check(json: &str) -> Result<BytesMut, Rejection> {
        let limits = Limits::default();
        let ctx = RequestContext {
            limits: &limits,
            received_ms: 1_795_341_600_000,
            api_key: "test",
            late_hours: Default::default(),
        };
        let value: Value = serde_json::from_str(json).unwrap();
        let mut out = BytesMut::new();
        encode(&value, &ctx, &mut out).map(|()| out)
    }

    #[test]
    fn gauges_counters_and_histograms_are_accepted() {
        check(r#"{"name":"cpu","kind":"gauge","value":0.5,"labels":{"host":"a"}}"#).unwrap();
        check(r#"{"name":"http.requests","kind":"counter","value":10}"#).unwrap();
        check(r#"{"name":"lat","kind":"histogram","bounds":[1,2],"counts":[1,2,3],"sum":9.5,"count":6}"#)
            .unwrap();
    }

    #[test]
    fn each_bad_field_is_named_with_its_reason() {
        let cases = [
            (r#"{"kind":"gauge","value":1}"#, "name", "missing"),
            (
                r#"{"name":"9lives","kind":"gauge","value":1}"#,
                "name",
                "invalid_value",
            ),
            (
                r#"{"name":"a","kind":"summary","value":1}"#,
                "kind",
                "invalid_value",
            ),
            (r#"{"name":"a","kind":"gauge"}"#, "value", "missing"),
            (
                r#"{"name":"a","kind":"counter","value":-1}"#,
                "value",
                "invalid_value",
            ),
            (
                r#"{"name":"a","kind":"gauge","value":1,"counts":[1]}"#,
                "counts",
                "invalid_value",
            ),
            (
                r#"{"name":"a","kind":"histogram","bounds":[2,1],"counts":[1,1,1],"sum":1,"count":3}"#,
                "bounds[1]",
                "invalid_value",
            ),
            (
                r#"{"name":"a","kind":"histogram","bounds":[1],"counts":[1],"sum":1,"count":1}"#,
                "counts",
                "invalid_value",
            ),
            (
                r#"{"name":"a","kind":"histogram","bounds":[1],"counts":[1,1],"sum":1,"count":3}"#,
                "count",
                "invalid_value",
            ),
            (
                r#"{"name":"a","kind":"histogram","bounds":[1],"counts":[1,-1],"sum":1,"count":0}"#,
                "counts[1]",
                "invalid_type",
            ),
            (
                r#"{"name":"a","kind":"gauge","value":1,"labels":{"x":{}}}"#,
                "labels.x",
                "invalid_type",
            ),
        ];
        for (json, field, code) in cases {
            let err = check(json).unwrap_err();
            assert_eq!(
                (err.field.as_str(), err.code),
                (field, code),
                "{json}: {}",
                err.reason
            );
        }
    }

    #[test]
    fn a_series_is_the_same_whatever_the_label_order() {
        let a = sorted_labels(vec![("b", Scalar::Str("2")), ("a", Scalar::Num(1.0))]).unwrap();
        let b = sorted_labels(vec![("a", Scalar::Str("1")), ("b", Scalar::Str("2"))]).unwrap();
        assert_eq!(series_id("m", &a, &[]), series_id("m", &b, &[]));
        assert_ne!(series_id("m", &a, &[]), series_id("n", &a, &[]));
        let resource = [("service.name".to_owned(), "checkout".to_owned())];
        assert_ne!(series_id("m", &a, &[]), series_id("m", &a, &resource));
    }
}
