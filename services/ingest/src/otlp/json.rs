//! OTLP/JSON into the protobuf message types, by a decoder of our own.
//!
//! The OTLP JSON mapping differs from the plain proto3 one (trace and span ids
//! are hex, not base64; 64-bit integers may come as strings or numbers; enums are
//! integers), and the `with-serde` derives of `opentelemetry-proto` lose data
//! silently on some of these (a string `asInt`, histogram counts: see
//! docs/otlp.md). Decoding into the same prost types as the protobuf path keeps
//! one mapping from OTLP to rows. Unknown fields are ignored, as the spec asks;
//! keys are lowerCamelCase, and the snake_case spelling is accepted too.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList, any_value,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram, HistogramDataPoint,
    Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint,
    exponential_histogram_data_point, metric, number_data_point, summary_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use serde_json::{Map, Value};

/// Where the JSON is wrong, and why.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct JsonError {
    pub path: String,
    pub reason: String,
}

type Result<T> = std::result::Result<T, JsonError>;

fn error(path: &str, reason: impl Into<String>) -> JsonError {
    JsonError {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

pub fn metrics_request(body: &[u8]) -> Result<ExportMetricsServiceRequest> {
    let root = parse(body)?;
    Ok(ExportMetricsServiceRequest {
        resource_metrics: list(&root, "resourceMetrics", "$", resource_metrics)?,
    })
}

pub fn logs_request(body: &[u8]) -> Result<ExportLogsServiceRequest> {
    let root = parse(body)?;
    Ok(ExportLogsServiceRequest {
        resource_logs: list(&root, "resourceLogs", "$", resource_logs)?,
    })
}

fn parse(body: &[u8]) -> Result<Map<String, Value>> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(error("$", "the body must be a JSON object")),
        Err(e) => Err(error("$", format!("not valid JSON: {e}"))),
    }
}

/// Counts records (log records, data points) and estimates what parsing the
/// body into a `serde_json::Value` and then prost messages allocates, without
/// allocating: checked against the budget before [`metrics_request`] or
/// [`logs_request`] build anything.
pub fn shape(body: &[u8]) -> Result<crate::wire::Shape> {
    use serde::de::DeserializeSeed;
    let mut shape = crate::wire::Shape::default();
    let mut de = serde_json::Deserializer::from_slice(body);
    Count {
        shape: &mut shape,
        records: false,
    }
    .deserialize(&mut de)
    .and_then(|()| de.end())
    .map_err(|e| error("$", format!("not valid JSON: {e}")))?;
    Ok(shape)
}

/// Bytes a JSON object costs once parsed: a B-tree leaf of 11 entries.
const OBJECT_BYTES: usize = 640;
/// Bytes a value costs once parsed, beside its object or array slot.
const VALUE_BYTES: usize = 32;

/// Counts one value; `records` says its array elements are records.
struct Count<'s> {
    shape: &'s mut crate::wire::Shape,
    records: bool,
}

impl<'de> serde::de::DeserializeSeed<'de> for Count<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl Count<'_> {
    fn add(&mut self, bytes: usize) {
        self.shape.decoded_bytes = self.shape.decoded_bytes.saturating_add(bytes);
    }
}

impl<'de> serde::de::Visitor<'de> for Count<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(mut self, _: bool) -> std::result::Result<(), E> {
        self.add(VALUE_BYTES);
        Ok(())
    }
    fn visit_i64<E>(mut self, _: i64) -> std::result::Result<(), E> {
        self.add(VALUE_BYTES);
        Ok(())
    }
    fn visit_u64<E>(mut self, _: u64) -> std::result::Result<(), E> {
        self.add(VALUE_BYTES);
        Ok(())
    }
    fn visit_f64<E>(mut self, _: f64) -> std::result::Result<(), E> {
        self.add(VALUE_BYTES);
        Ok(())
    }
    fn visit_str<E>(mut self, v: &str) -> std::result::Result<(), E> {
        // The parsed string, and its copy in the prost message.
        self.add(VALUE_BYTES + 2 * v.len());
        Ok(())
    }
    fn visit_unit<E>(mut self) -> std::result::Result<(), E> {
        self.add(VALUE_BYTES);
        Ok(())
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(
        mut self,
        mut seq: A,
    ) -> std::result::Result<(), A::Error> {
        self.add(VALUE_BYTES);
        loop {
            if self.records {
                self.shape.records += 1;
            }
            let seed = Count {
                shape: self.shape,
                records: false,
            };
            if seq.next_element_seed(seed)?.is_none() {
                break;
            }
        }
        if self.records {
            // The loop counted the end of the array too.
            self.shape.records -= 1;
        }
        Ok(())
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(
        mut self,
        mut map: A,
    ) -> std::result::Result<(), A::Error> {
        self.add(OBJECT_BYTES);
        while let Some(RecordKey(records)) = map.next_key()? {
            // The key, and the largest prost message a JSON object becomes.
            self.add(VALUE_BYTES + 200);
            map.next_value_seed(Count {
                shape: self.shape,
                records,
            })?;
        }
        Ok(())
    }
}

/// An object key, read only to know whether its array holds records.
struct RecordKey(bool);

impl<'de> serde::Deserialize<'de> for RecordKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = RecordKey;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E>(self, v: &str) -> std::result::Result<RecordKey, E> {
                Ok(RecordKey(matches!(
                    v,
                    "logRecords" | "log_records" | "dataPoints" | "data_points"
                )))
            }
        }
        d.deserialize_str(V)
    }
}

/// `lowerCamelCase` key, or its `snake_case` spelling.
fn get<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    map.get(key)
        .or_else(|| {
            let mut snake = String::with_capacity(key.len() + 4);
            for c in key.chars() {
                if c.is_ascii_uppercase() {
                    snake.push('_');
                    snake.push(c.to_ascii_lowercase());
                } else {
                    snake.push(c);
                }
            }
            map.get(&snake)
        })
        .filter(|v| !v.is_null())
}

fn object<'a>(value: &'a Value, path: &str) -> Result<&'a Map<String, Value>> {
    value
        .as_object()
        .ok_or_else(|| error(path, "must be an object"))
}

fn list<T>(
    map: &Map<String, Value>,
    key: &str,
    path: &str,
    item: impl Fn(&Map<String, Value>, &str) -> Result<T>,
) -> Result<Vec<T>> {
    match get(map, key) {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let at = format!("{path}.{key}[{i}]");
                item(object(v, &at)?, &at)
            })
            .collect(),
        Some(_) => Err(error(&format!("{path}.{key}"), "must be an array")),
    }
}

fn string(map: &Map<String, Value>, key: &str, path: &str) -> Result<String> {
    match get(map, key) {
        None => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(error(&format!("{path}.{key}"), "must be a string")),
    }
}

/// A 64-bit integer: a decimal string or a JSON number.
fn u64_of(value: &Value, path: &str) -> Result<u64> {
    match value {
        Value::String(s) => s
            .parse()
            .map_err(|_| error(path, format!("`{s}` is not an unsigned integer"))),
        Value::Number(n) => n
            .as_u64()
            .ok_or_else(|| error(path, format!("{n} is not an unsigned integer"))),
        _ => Err(error(
            path,
            "must be an integer (a number or a decimal string)",
        )),
    }
}

fn i64_of(value: &Value, path: &str) -> Result<i64> {
    match value {
        Value::String(s) => s
            .parse()
            .map_err(|_| error(path, format!("`{s}` is not an integer"))),
        Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| error(path, format!("{n} is not an integer"))),
        _ => Err(error(
            path,
            "must be an integer (a number or a decimal string)",
        )),
    }
}

/// A double: a number, or one of the proto3 JSON strings "NaN", "Infinity", "-Infinity".
fn f64_of(value: &Value, path: &str) -> Result<f64> {
    match value {
        Value::Number(n) => n.as_f64().ok_or_else(|| error(path, "must be a number")),
        Value::String(s) => match s.as_str() {
            "NaN" => Ok(f64::NAN),
            "Infinity" => Ok(f64::INFINITY),
            "-Infinity" => Ok(f64::NEG_INFINITY),
            other => other
                .parse()
                .map_err(|_| error(path, format!("`{other}` is not a number"))),
        },
        _ => Err(error(path, "must be a number")),
    }
}

fn u64_field(map: &Map<String, Value>, key: &str, path: &str) -> Result<u64> {
    get(map, key).map_or(Ok(0), |v| u64_of(v, &format!("{path}.{key}")))
}

fn opt_f64_field(map: &Map<String, Value>, key: &str, path: &str) -> Result<Option<f64>> {
    get(map, key)
        .map(|v| f64_of(v, &format!("{path}.{key}")))
        .transpose()
}

fn i32_field(map: &Map<String, Value>, key: &str, path: &str) -> Result<i32> {
    let at = format!("{path}.{key}");
    match get(map, key) {
        None => Ok(0),
        Some(v) => i32::try_from(i64_of(v, &at)?).map_err(|_| error(&at, "is out of range")),
    }
}

fn u32_field(map: &Map<String, Value>, key: &str, path: &str) -> Result<u32> {
    let at = format!("{path}.{key}");
    match get(map, key) {
        None => Ok(0),
        Some(v) => u32::try_from(u64_of(v, &at)?).map_err(|_| error(&at, "is out of range")),
    }
}

fn bool_field(map: &Map<String, Value>, key: &str, path: &str) -> Result<bool> {
    match get(map, key) {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(error(&format!("{path}.{key}"), "must be true or false")),
    }
}

fn numbers<T>(
    map: &Map<String, Value>,
    key: &str,
    path: &str,
    each: impl Fn(&Value, &str) -> Result<T>,
) -> Result<Vec<T>> {
    match get(map, key) {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| each(v, &format!("{path}.{key}[{i}]")))
            .collect(),
        Some(_) => Err(error(&format!("{path}.{key}"), "must be an array")),
    }
}

/// Trace and span ids are hex in OTLP/JSON (not base64 as plain proto3 would have).
fn hex_id(map: &Map<String, Value>, key: &str, path: &str, len: usize) -> Result<Vec<u8>> {
    let text = string(map, key, path)?;
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let bytes =
        hex::decode(&text).map_err(|_| error(&format!("{path}.{key}"), "must be a hex string"))?;
    if bytes.len() != len {
        return Err(error(
            &format!("{path}.{key}"),
            format!("must be {} hex digits", len * 2),
        ));
    }
    Ok(bytes)
}

fn any_value(map: &Map<String, Value>, path: &str) -> Result<AnyValue> {
    use any_value::Value as V;
    let (key, value) = match map.iter().find(|(_, v)| !v.is_null()) {
        None => return Ok(AnyValue { value: None }),
        Some(pair) => pair,
    };
    let at = format!("{path}.{key}");
    let value = match key.as_str() {
        "stringValue" | "string_value" => V::StringValue(
            value
                .as_str()
                .ok_or_else(|| error(&at, "must be a string"))?
                .to_owned(),
        ),
        "boolValue" | "bool_value" => V::BoolValue(
            value
                .as_bool()
                .ok_or_else(|| error(&at, "must be a bool"))?,
        ),
        "intValue" | "int_value" => V::IntValue(i64_of(value, &at)?),
        "doubleValue" | "double_value" => V::DoubleValue(f64_of(value, &at)?),
        "bytesValue" | "bytes_value" => {
            use base64::Engine;
            let text = value
                .as_str()
                .ok_or_else(|| error(&at, "must be a string"))?;
            V::BytesValue(
                base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .map_err(|_| error(&at, "must be base64"))?,
            )
        }
        "arrayValue" | "array_value" => V::ArrayValue(ArrayValue {
            values: list(object(value, &at)?, "values", &at, any_value)?,
        }),
        "kvlistValue" | "kvlist_value" => V::KvlistValue(KeyValueList {
            values: list(object(value, &at)?, "values", &at, key_value)?,
        }),
        other => return Err(error(path, format!("`{other}` is not an AnyValue kind"))),
    };
    Ok(AnyValue { value: Some(value) })
}

fn key_value(map: &Map<String, Value>, path: &str) -> Result<KeyValue> {
    let value = match get(map, "value") {
        None => None,
        Some(v) => Some(any_value(
            object(v, &format!("{path}.value"))?,
            &format!("{path}.value"),
        )?),
    };
    Ok(KeyValue {
        key: string(map, "key", path)?,
        value,
        ..Default::default()
    })
}

fn attributes(map: &Map<String, Value>, path: &str) -> Result<Vec<KeyValue>> {
    list(map, "attributes", path, key_value)
}

fn resource(map: &Map<String, Value>, path: &str) -> Result<Option<Resource>> {
    match get(map, "resource") {
        None => Ok(None),
        Some(v) => {
            let at = format!("{path}.resource");
            Ok(Some(Resource {
                attributes: attributes(object(v, &at)?, &at)?,
                ..Default::default()
            }))
        }
    }
}

fn scope(map: &Map<String, Value>, path: &str) -> Result<Option<InstrumentationScope>> {
    match get(map, "scope") {
        None => Ok(None),
        Some(v) => {
            let at = format!("{path}.scope");
            let scope = object(v, &at)?;
            Ok(Some(InstrumentationScope {
                name: string(scope, "name", &at)?,
                version: string(scope, "version", &at)?,
                attributes: attributes(scope, &at)?,
                dropped_attributes_count: 0,
            }))
        }
    }
}

fn resource_metrics(map: &Map<String, Value>, path: &str) -> Result<ResourceMetrics> {
    Ok(ResourceMetrics {
        resource: resource(map, path)?,
        scope_metrics: list(map, "scopeMetrics", path, |m, at| {
            Ok(ScopeMetrics {
                scope: scope(m, at)?,
                metrics: list(m, "metrics", at, metric)?,
                schema_url: string(m, "schemaUrl", at)?,
            })
        })?,
        schema_url: string(map, "schemaUrl", path)?,
    })
}

fn metric(map: &Map<String, Value>, path: &str) -> Result<Metric> {
    let kinds = [
        "gauge",
        "sum",
        "histogram",
        "exponentialHistogram",
        "summary",
    ];
    let mut data = None;
    for kind in kinds {
        let Some(value) = get(map, kind) else {
            continue;
        };
        let at = format!("{path}.{kind}");
        let body = object(value, &at)?;
        let temporality = || i32_field(body, "aggregationTemporality", &at);
        data = Some(match kind {
            "gauge" => metric::Data::Gauge(Gauge {
                data_points: list(body, "dataPoints", &at, number_point)?,
            }),
            "sum" => metric::Data::Sum(Sum {
                data_points: list(body, "dataPoints", &at, number_point)?,
                aggregation_temporality: temporality()?,
                is_monotonic: bool_field(body, "isMonotonic", &at)?,
            }),
            "histogram" => metric::Data::Histogram(Histogram {
                data_points: list(body, "dataPoints", &at, histogram_point)?,
                aggregation_temporality: temporality()?,
            }),
            "exponentialHistogram" => metric::Data::ExponentialHistogram(ExponentialHistogram {
                data_points: list(body, "dataPoints", &at, exponential_point)?,
                aggregation_temporality: temporality()?,
            }),
            _ => metric::Data::Summary(Summary {
                data_points: list(body, "dataPoints", &at, summary_point)?,
            }),
        });
        break;
    }
    Ok(Metric {
        name: string(map, "name", path)?,
        description: string(map, "description", path)?,
        unit: string(map, "unit", path)?,
        metadata: Vec::new(),
        data,
    })
}

fn number_point(map: &Map<String, Value>, path: &str) -> Result<NumberDataPoint> {
    let value = if let Some(v) = get(map, "asDouble") {
        Some(number_data_point::Value::AsDouble(f64_of(
            v,
            &format!("{path}.asDouble"),
        )?))
    } else if let Some(v) = get(map, "asInt") {
        Some(number_data_point::Value::AsInt(i64_of(
            v,
            &format!("{path}.asInt"),
        )?))
    } else {
        None
    };
    Ok(NumberDataPoint {
        attributes: attributes(map, path)?,
        start_time_unix_nano: u64_field(map, "startTimeUnixNano", path)?,
        time_unix_nano: u64_field(map, "timeUnixNano", path)?,
        exemplars: Vec::new(),
        flags: u32_field(map, "flags", path)?,
        value,
    })
}

fn histogram_point(map: &Map<String, Value>, path: &str) -> Result<HistogramDataPoint> {
    Ok(HistogramDataPoint {
        attributes: attributes(map, path)?,
        start_time_unix_nano: u64_field(map, "startTimeUnixNano", path)?,
        time_unix_nano: u64_field(map, "timeUnixNano", path)?,
        count: u64_field(map, "count", path)?,
        sum: opt_f64_field(map, "sum", path)?,
        bucket_counts: numbers(map, "bucketCounts", path, u64_of)?,
        explicit_bounds: numbers(map, "explicitBounds", path, f64_of)?,
        exemplars: Vec::new(),
        flags: u32_field(map, "flags", path)?,
        min: opt_f64_field(map, "min", path)?,
        max: opt_f64_field(map, "max", path)?,
    })
}

fn exponential_point(
    map: &Map<String, Value>,
    path: &str,
) -> Result<ExponentialHistogramDataPoint> {
    let buckets = |key: &str| -> Result<Option<exponential_histogram_data_point::Buckets>> {
        match get(map, key) {
            None => Ok(None),
            Some(v) => {
                let at = format!("{path}.{key}");
                let b = object(v, &at)?;
                Ok(Some(exponential_histogram_data_point::Buckets {
                    offset: i32_field(b, "offset", &at)?,
                    bucket_counts: numbers(b, "bucketCounts", &at, u64_of)?,
                }))
            }
        }
    };
    Ok(ExponentialHistogramDataPoint {
        attributes: attributes(map, path)?,
        start_time_unix_nano: u64_field(map, "startTimeUnixNano", path)?,
        time_unix_nano: u64_field(map, "timeUnixNano", path)?,
        count: u64_field(map, "count", path)?,
        sum: opt_f64_field(map, "sum", path)?,
        scale: i32_field(map, "scale", path)?,
        zero_count: u64_field(map, "zeroCount", path)?,
        positive: buckets("positive")?,
        negative: buckets("negative")?,
        flags: u32_field(map, "flags", path)?,
        exemplars: Vec::new(),
        min: opt_f64_field(map, "min", path)?,
        max: opt_f64_field(map, "max", path)?,
        zero_threshold: opt_f64_field(map, "zeroThreshold", path)?.unwrap_or(0.0),
    })
}

fn summary_point(map: &Map<String, Value>, path: &str) -> Result<SummaryDataPoint> {
    Ok(SummaryDataPoint {
        attributes: attributes(map, path)?,
        start_time_unix_nano: u64_field(map, "startTimeUnixNano", path)?,
        time_unix_nano: u64_field(map, "timeUnixNano", path)?,
        count: u64_field(map, "count", path)?,
        sum: opt_f64_field(map, "sum", path)?.unwrap_or(0.0),
        quantile_values: list(map, "quantileValues", path, |q, at| {
            Ok(summary_data_point::ValueAtQuantile {
                quantile: opt_f64_field(q, "quantile", at)?.unwrap_or(0.0),
                value: opt_f64_field(q, "value", at)?.unwrap_or(0.0),
            })
        })?,
        flags: u32_field(map, "flags", path)?,
    })
}

fn resource_logs(map: &Map<String, Value>, path: &str) -> Result<ResourceLogs> {
    Ok(ResourceLogs {
        resource: resource(map, path)?,
        scope_logs: list(map, "scopeLogs", path, |m, at| {
            Ok(ScopeLogs {
                scope: scope(m, at)?,
                log_records: list(m, "logRecords", at, log_record)?,
                schema_url: string(m, "schemaUrl", at)?,
            })
        })?,
        schema_url: string(map, "schemaUrl", path)?,
    })
}

fn log_record(map: &Map<String, Value>, path: &str) -> Result<LogRecord> {
    let body = match get(map, "body") {
        None => None,
        Some(v) => {
            let at = format!("{path}.body");
            Some(any_value(object(v, &at)?, &at)?)
        }
    };
    Ok(LogRecord {
        time_unix_nano: u64_field(map, "timeUnixNano", path)?,
        observed_time_unix_nano: u64_field(map, "observedTimeUnixNano", path)?,
        severity_number: i32_field(map, "severityNumber", path)?,
        severity_text: string(map, "severityText", path)?,
        body,
        attributes: attributes(map, path)?,
        dropped_attributes_count: u32_field(map, "droppedAttributesCount", path)?,
        flags: u32_field(map, "flags", path)?,
        trace_id: hex_id(map, "traceId", path, 16)?,
        span_id: hex_id(map, "spanId", path, 8)?,
        event_name: string(map, "eventName", path)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int64_as_string_or_number_and_hex_ids() {
        let body = br#"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"checkout"}}]},
          "scopeLogs":[{"scope":{"name":"app"},"logRecords":[{"timeUnixNano":"1795341600000000001","severityNumber":17,
          "body":{"stringValue":"boom"},"traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"EEE19B7EC3C1B174",
          "attributes":[{"key":"n","value":{"intValue":"42"}}],"unknownField":true}]}]}]}"#;
        let request = logs_request(body).unwrap();
        let record = &request.resource_logs[0].scope_logs[0].log_records[0];
        assert_eq!(record.time_unix_nano, 1_795_341_600_000_000_001);
        assert_eq!(record.trace_id.len(), 16);
        assert_eq!(record.span_id, hex::decode("eee19b7ec3c1b174").unwrap());
        assert_eq!(
            record.attributes[0].value.as_ref().unwrap().value,
            Some(any_value::Value::IntValue(42))
        );
    }

    #[test]
    fn a_bad_value_is_named_by_its_path() {
        let body = br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"m","sum":{"dataPoints":[{"asInt":"x"}]}}]}]}]}"#;
        let err = metrics_request(body).unwrap_err();
        assert_eq!(
            err.path,
            "$.resourceMetrics[0].scopeMetrics[0].metrics[0].sum.dataPoints[0].asInt"
        );
    }
}
