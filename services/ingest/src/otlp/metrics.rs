//! OTLP metrics into `metric_points` rows, the model `/v1/metrics` and
//! Prometheus remote write share.
//!
//! | OTLP                                   | row                                        |
//! |----------------------------------------|--------------------------------------------|
//! | Gauge                                  | gauge                                      |
//! | Sum, monotonic                         | counter, with its temporality              |
//! | Sum, not monotonic (an up-down counter)| gauge when cumulative (it is a level); counter with delta temporality when delta |
//! | Histogram                              | histogram (same explicit-bucket model)     |
//! | ExponentialHistogram                   | histogram, its buckets turned into explicit bounds (exact: each exponential bucket becomes one explicit bucket) |
//! | Summary                                | `<name>_sum` and `<name>_count` counters, and a `<name>` gauge per quantile with a `quantile` label, as Prometheus does |
//!
//! Point attributes are the labels; resource attributes are kept in their own
//! columns and are part of the series identity. `service.name` is also copied to a
//! `service` label when the point has none, so that queries written for
//! `/v1/metrics` (which filter on `service`) work on OTLP data unchanged.
//! Points flagged "no recorded value" are skipped, as Prometheus skips stale markers.

use bytes::BytesMut;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, ExponentialHistogramDataPoint, HistogramDataPoint, NumberDataPoint,
    SummaryDataPoint, metric as otlp_metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;

use crate::event::RequestContext;
use crate::fields;
use crate::metric::{
    self, Histogram, MetricKind, PointValue, SeriesContext, SeriesHead, Temporality,
    check_metric_name,
};
use crate::records::Rejection;

/// Labels or resource attributes as sorted (key, text value) pairs.
pub type Attributes = Vec<(String, String)>;

/// Rows written and points refused (with the first reasons, for the answer).
#[derive(Debug, Default)]
pub struct Encoded {
    pub rows: usize,
    pub data: BytesMut,
    pub rejected: Vec<Rejection>,
    pub rejected_points: usize,
    /// The reason code of every rejection, for the metrics.
    pub rejected_codes: Vec<&'static str>,
    /// Encoded bytes at most; encoding stops once `data` passes it.
    pub max_bytes: usize,
    /// Set when `data` passed `max_bytes`: the request is refused whole.
    pub over: bool,
}

impl Encoded {
    /// An empty outcome that may hold `max_bytes` encoded bytes.
    pub fn within(max_bytes: usize) -> Self {
        Self {
            max_bytes,
            ..Self::default()
        }
    }

    /// Notes the row just written; says whether encoding may go on.
    pub(crate) fn wrote_row(&mut self) -> bool {
        self.rows += 1;
        if self.data.len() > self.max_bytes {
            self.over = true;
        }
        !self.over
    }
}

/// How many reasons an answer carries at most; the count covers them all.
const REASONS_KEPT: usize = 20;

impl Encoded {
    pub(crate) fn reject(&mut self, path: String, mut rejection: Rejection) {
        self.rejected_points += 1;
        self.rejected_codes.push(rejection.code);
        if self.rejected.len() < REASONS_KEPT {
            rejection.field = format!("{path}.{}", rejection.field);
            self.rejected.push(rejection);
        }
    }
}

/// Encodes every point of the request, stopping once the rows pass `max_bytes`.
pub fn encode(
    request: &ExportMetricsServiceRequest,
    ctx: &RequestContext,
    max_bytes: usize,
) -> Encoded {
    let mut out = Encoded::within(max_bytes);
    for (r, resource_metrics) in request.resource_metrics.iter().enumerate() {
        let (resource, service) = resource_and_service(resource_metrics.resource.as_ref());
        for (s, scope_metrics) in resource_metrics.scope_metrics.iter().enumerate() {
            let (scope_name, scope_version) = scope_metrics
                .scope
                .as_ref()
                .map_or(("", ""), |s| (s.name.as_str(), s.version.as_str()));
            let shared = check_shared(&resource, scope_name, scope_version, ctx.limits);
            for (m, metric) in scope_metrics.metrics.iter().enumerate() {
                if out.over {
                    return out;
                }
                let path = format!("resourceMetrics[{r}].scopeMetrics[{s}].metrics[{m}]");
                let shared = shared.clone().and_then(|bytes| {
                    fields::check_length("unit", &metric.unit, ctx.limits.max_name_length)?;
                    Ok(bytes + metric.unit.len())
                });
                if let Err(rejection) = shared {
                    let points = metric.data.as_ref().map_or(1, count_points).max(1);
                    for _ in 0..points {
                        out.reject(path.clone(), rejection.clone());
                    }
                    continue;
                }
                let series = Series {
                    shared_bytes: shared.unwrap_or(0),
                    name: &metric.name,
                    unit: &metric.unit,
                    resource: &resource,
                    service: service.as_deref(),
                    scope_name,
                    scope_version,
                    ctx,
                };
                series.encode(metric.data.as_ref(), &path, &mut out);
            }
        }
    }
    out
}

/// Checks what every row of a resource and scope repeats: the resource's
/// attributes like a record's (count, key and value lengths), the scope's name
/// and version; gives their bytes, which count against `max_series_bytes`.
pub fn check_shared(
    resource: &Attributes,
    scope_name: &str,
    scope_version: &str,
    limits: &crate::config::Limits,
) -> Result<usize, Rejection> {
    check_attributes("resource.attributes", resource, limits, Values::Checked)?;
    fields::check_length("scope.name", scope_name, limits.max_name_length)?;
    fields::check_length("scope.version", scope_version, limits.max_name_length)?;
    let bytes = resource
        .iter()
        .map(|(k, v)| k.len() + v.len())
        .sum::<usize>()
        + scope_name.len()
        + scope_version.len();
    check_series_bytes("resource.attributes", bytes, limits)?;
    Ok(bytes)
}

/// Whether attribute values are held to `max_value_length`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Values {
    /// Labels of a series, which every row repeats.
    Checked,
    /// Attributes of a log record, stored once with it (a message or a stack
    /// trace may be long); the row's size is bounded by the request's budget.
    Unchecked,
}

/// Refuses attributes (a point's, a log record's, a resource's) when there are
/// more than `max_properties`, a key is not a name, or (with [`Values::Checked`])
/// a value is longer than `max_value_length`; `field` names them in the rejection.
pub fn check_attributes(
    field: &str,
    attributes: &Attributes,
    limits: &crate::config::Limits,
    values: Values,
) -> Result<(), Rejection> {
    if attributes.len() > limits.max_properties {
        return Err(Rejection::new(
            field,
            "too_many",
            format!(
                "has {} attributes; the limit is max_properties = {}",
                attributes.len(),
                limits.max_properties
            ),
        ));
    }
    for (key, text) in attributes {
        let at = || format!("{field}.{key}");
        fields::check_name(&at(), key, limits)?;
        if values == Values::Checked {
            fields::check_length(&at(), text, limits.max_value_length)?;
        }
    }
    Ok(())
}

/// Refuses a series (or log row) whose repeated fields take over `max_series_bytes`.
pub fn check_series_bytes(
    field: &str,
    bytes: usize,
    limits: &crate::config::Limits,
) -> Result<(), Rejection> {
    if bytes > limits.max_series_bytes {
        return Err(Rejection::new(
            field,
            "too_large",
            format!(
                "with the attributes, resource, scope and unit every row repeats, {bytes} bytes; the limit is max_series_bytes = {}",
                limits.max_series_bytes
            ),
        ));
    }
    Ok(())
}

/// What the points of one metric share.
struct Series<'a> {
    /// Bytes of the resource, scope and unit, checked already.
    shared_bytes: usize,
    name: &'a str,
    unit: &'a str,
    resource: &'a Attributes,
    service: Option<&'a str>,
    scope_name: &'a str,
    scope_version: &'a str,
    ctx: &'a RequestContext<'a>,
}

const NO_RECORDED_VALUE: u32 = 1;

impl Series<'_> {
    fn encode(&self, data: Option<&otlp_metric::Data>, path: &str, out: &mut Encoded) {
        if let Err(rejection) = self.check_name() {
            let points = data.map_or(1, count_points).max(1);
            for _ in 0..points {
                out.reject(path.to_owned(), rejection.clone());
            }
            return;
        }
        let Some(data) = data else {
            out.reject(
                path.to_owned(),
                Rejection::new(
                    "data",
                    "missing",
                    "the metric has no gauge, sum, histogram, exponentialHistogram or summary",
                ),
            );
            return;
        };
        match data {
            otlp_metric::Data::Gauge(gauge) => {
                for (i, point) in gauge.data_points.iter().enumerate() {
                    if out.over {
                        return;
                    }
                    let at = format!("{path}.gauge.dataPoints[{i}]");
                    self.number(
                        point,
                        MetricKind::Gauge,
                        Temporality::Cumulative,
                        false,
                        &at,
                        out,
                    );
                }
            }
            otlp_metric::Data::Sum(sum) => {
                let delta = sum.aggregation_temporality == AggregationTemporality::Delta as i32;
                let (kind, temporality) = match (sum.is_monotonic, delta) {
                    (true, false) => (MetricKind::Counter, Temporality::Cumulative),
                    (_, true) => (MetricKind::Counter, Temporality::Delta),
                    (false, false) => (MetricKind::Gauge, Temporality::Cumulative),
                };
                for (i, point) in sum.data_points.iter().enumerate() {
                    if out.over {
                        return;
                    }
                    let at = format!("{path}.sum.dataPoints[{i}]");
                    self.number(point, kind, temporality, sum.is_monotonic, &at, out);
                }
            }
            otlp_metric::Data::Histogram(histogram) => self.histograms(
                &histogram.data_points,
                &format!("{path}.histogram"),
                histogram.aggregation_temporality,
                |p| (&p.attributes, p.time_unix_nano, p.flags),
                explicit_histogram,
                out,
            ),
            otlp_metric::Data::ExponentialHistogram(histogram) => self.histograms(
                &histogram.data_points,
                &format!("{path}.exponentialHistogram"),
                histogram.aggregation_temporality,
                |p| (&p.attributes, p.time_unix_nano, p.flags),
                exponential_to_explicit,
                out,
            ),
            otlp_metric::Data::Summary(summary) => {
                for (i, point) in summary.data_points.iter().enumerate() {
                    if out.over {
                        return;
                    }
                    let at = format!("{path}.summary.dataPoints[{i}]");
                    if let Err(rejection) = self.summary(point, out) {
                        out.reject(at, rejection);
                    }
                }
            }
        }
    }

    /// Histogram points of either bucket model, turned into explicit buckets.
    fn histograms<P>(
        &self,
        points: &[P],
        path: &str,
        aggregation_temporality: i32,
        common: impl Fn(&P) -> (&Vec<KeyValue>, u64, u32),
        to_explicit: impl Fn(&P, usize) -> Result<Histogram, Rejection>,
        out: &mut Encoded,
    ) {
        let temporality = temporality_of(aggregation_temporality);
        for (i, point) in points.iter().enumerate() {
            if out.over {
                return;
            }
            let (attributes, time_unix_nano, flags) = common(point);
            let result = to_explicit(point, self.ctx.limits.max_histogram_buckets).and_then(|h| {
                self.write(
                    attributes,
                    time_unix_nano,
                    flags,
                    MetricKind::Histogram,
                    temporality,
                    self.name,
                    0.0,
                    Some(&h),
                    out,
                )
            });
            if let Err(rejection) = result {
                out.reject(format!("{path}.dataPoints[{i}]"), rejection);
            }
        }
    }

    fn check_name(&self) -> Result<(), Rejection> {
        if self.name.is_empty() {
            return Err(Rejection::missing("name"));
        }
        fields::check_name("name", self.name, self.ctx.limits)?;
        check_metric_name(self.name)
    }

    fn number(
        &self,
        point: &NumberDataPoint,
        kind: MetricKind,
        temporality: Temporality,
        monotonic: bool,
        at: &str,
        out: &mut Encoded,
    ) {
        let value = match point.value {
            Some(number_data_point::Value::AsDouble(v)) => v,
            Some(number_data_point::Value::AsInt(v)) => v as f64,
            None if point.flags & NO_RECORDED_VALUE != 0 => return,
            None => {
                out.reject(
                    at.to_owned(),
                    Rejection::new("value", "missing", "needs asDouble or asInt"),
                );
                return;
            }
        };
        let result = if !value.is_finite() {
            Err(Rejection::new(
                "value",
                "invalid_value",
                "must be a finite number",
            ))
        } else if monotonic && value < 0.0 {
            Err(Rejection::new(
                "value",
                "invalid_value",
                "a monotonic sum must not be negative",
            ))
        } else {
            self.write(
                &point.attributes,
                point.time_unix_nano,
                point.flags,
                kind,
                temporality,
                self.name,
                value,
                None,
                out,
            )
        };
        if let Err(rejection) = result {
            out.reject(at.to_owned(), rejection);
        }
    }

    fn summary(&self, point: &SummaryDataPoint, out: &mut Encoded) -> Result<(), Rejection> {
        // A NaN in a sum makes every group sum over it NaN, which no threshold crosses.
        if !point.sum.is_finite() {
            return Err(Rejection::new(
                "sum",
                "invalid_value",
                "must be a finite number",
            ));
        }
        if let Some(q) = point
            .quantile_values
            .iter()
            .find(|q| !q.value.is_finite() || !(0.0..=1.0).contains(&q.quantile))
        {
            return Err(Rejection::new(
                "quantileValues",
                "invalid_value",
                format!(
                    "quantile {} has value {}: quantiles must be between 0 and 1 and values finite",
                    q.quantile, q.value
                ),
            ));
        }
        let sum_name = format!("{}_sum", self.name);
        let count_name = format!("{}_count", self.name);
        let mut staged = Encoded::within(usize::MAX);
        let write =
            |name: &str, kind, value: f64, extra: Option<(&str, String)>, staged: &mut Encoded| {
                let mut attributes = point.attributes.clone();
                if let Some((key, text)) = extra {
                    attributes.push(KeyValue {
                        key: key.to_owned(),
                        value: Some(AnyValue {
                            value: Some(any_value::Value::StringValue(text)),
                        }),
                        ..Default::default()
                    });
                }
                self.write(
                    &attributes,
                    point.time_unix_nano,
                    point.flags,
                    kind,
                    Temporality::Cumulative,
                    name,
                    value,
                    None,
                    staged,
                )
            };
        write(&sum_name, MetricKind::Counter, point.sum, None, &mut staged)?;
        write(
            &count_name,
            MetricKind::Counter,
            point.count as f64,
            None,
            &mut staged,
        )?;
        for q in &point.quantile_values {
            write(
                self.name,
                MetricKind::Gauge,
                q.value,
                Some(("quantile", q.quantile.to_string())),
                &mut staged,
            )?;
        }
        // All rows of the point, or none.
        out.rows += staged.rows.saturating_sub(1);
        out.data.extend_from_slice(&staged.data);
        out.wrote_row();
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn write(
        &self,
        point_attributes: &[KeyValue],
        time_unix_nano: u64,
        flags: u32,
        kind: MetricKind,
        temporality: Temporality,
        name: &str,
        value: f64,
        histogram: Option<&Histogram>,
        out: &mut Encoded,
    ) -> Result<(), Rejection> {
        if flags & NO_RECORDED_VALUE != 0 {
            return Ok(());
        }
        let limits = self.ctx.limits;
        let time_ms =
            fields::unix_nanos_ms("timeUnixNano", time_unix_nano, self.ctx.received_ms, limits)?;
        let mut labels = attributes(point_attributes);
        if let Some(service) = self.service
            && !labels.iter().any(|(k, _)| k == "service")
        {
            let at = labels.partition_point(|(k, _)| k.as_str() < "service");
            labels.insert(at, ("service".to_owned(), service.to_owned()));
        }
        check_attributes("attributes", &labels, limits, Values::Checked)?;
        let label_bytes = labels.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
        check_series_bytes(
            "attributes",
            label_bytes + name.len() + self.shared_bytes,
            limits,
        )?;
        let context = SeriesContext {
            temporality,
            unit: self.unit,
            resource: self.resource,
            scope_name: self.scope_name,
            scope_version: self.scope_version,
        };
        SeriesHead::with_context(name, kind, &labels, &context).write_point(
            PointValue {
                time_ms,
                value,
                histogram,
            },
            self.ctx,
            &mut out.data,
        );
        out.wrote_row();
        Ok(())
    }
}

fn count_points(data: &otlp_metric::Data) -> usize {
    match data {
        otlp_metric::Data::Gauge(g) => g.data_points.len(),
        otlp_metric::Data::Sum(s) => s.data_points.len(),
        otlp_metric::Data::Histogram(h) => h.data_points.len(),
        otlp_metric::Data::ExponentialHistogram(h) => h.data_points.len(),
        otlp_metric::Data::Summary(s) => s.data_points.len(),
    }
}

fn temporality_of(aggregation_temporality: i32) -> Temporality {
    if aggregation_temporality == AggregationTemporality::Delta as i32 {
        Temporality::Delta
    } else {
        Temporality::Cumulative
    }
}

/// The resource's attributes, and its `service.name` when it has one.
pub fn resource_and_service(resource: Option<&Resource>) -> (Attributes, Option<String>) {
    let attributes = resource
        .map(|r| attributes(&r.attributes))
        .unwrap_or_default();
    let service = attributes
        .iter()
        .find(|(k, _)| k == "service.name")
        .map(|(_, v)| v.clone());
    (attributes, service)
}

/// Attributes as sorted (key, text) pairs; a key given twice keeps its first value.
pub fn attributes(attributes: &[KeyValue]) -> Attributes {
    let mut pairs: Attributes = attributes
        .iter()
        .map(|kv| (kv.key.clone(), any_value_text(kv.value.as_ref())))
        .collect();
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    pairs.dedup_by(|later, first| later.0 == first.0);
    pairs
}

/// An attribute value as text: strings as they are, numbers and bools as JSON
/// writes them, arrays and maps as JSON, bytes as base64.
pub fn any_value_text(value: Option<&AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        None => String::new(),
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(other) => any_value_json(other).to_string(),
    }
}

fn any_value_json(value: &any_value::Value) -> serde_json::Value {
    use any_value::Value as V;
    use serde_json::Value as J;
    match value {
        V::StringValue(s) => J::String(s.clone()),
        V::BoolValue(b) => J::Bool(*b),
        V::IntValue(i) => J::from(*i),
        V::DoubleValue(d) => serde_json::Number::from_f64(*d).map_or(J::Null, J::Number),
        V::ArrayValue(a) => J::Array(
            a.values
                .iter()
                .map(|v| v.value.as_ref().map_or(J::Null, any_value_json))
                .collect(),
        ),
        V::KvlistValue(kv) => J::Object(
            kv.values
                .iter()
                .map(|kv| {
                    let value = kv
                        .value
                        .as_ref()
                        .and_then(|v| v.value.as_ref())
                        .map_or(J::Null, any_value_json);
                    (kv.key.clone(), value)
                })
                .collect(),
        ),
        V::BytesValue(bytes) => {
            use base64::Engine;
            J::String(base64::engine::general_purpose::STANDARD.encode(bytes))
        }
        V::StringValueStrindex(i) => J::from(*i),
    }
}

fn explicit_histogram(
    point: &HistogramDataPoint,
    max_buckets: usize,
) -> Result<Histogram, Rejection> {
    let bounds = point.explicit_bounds.clone();
    let counts = point.bucket_counts.clone();
    if counts.is_empty() && bounds.is_empty() {
        // Only count and sum were recorded: one bucket holds them all.
        return Ok(Histogram {
            bounds,
            counts: vec![point.count],
            sum: point.sum.unwrap_or(0.0),
            count: point.count,
        });
    }
    if counts.len() != bounds.len() + 1 {
        return Err(Rejection::new(
            "bucketCounts",
            "invalid_value",
            format!(
                "has {} buckets; {} explicitBounds make {}",
                counts.len(),
                bounds.len(),
                bounds.len() + 1
            ),
        ));
    }
    check_histogram(bounds, counts, point.sum, point.count, max_buckets)
}

fn check_histogram(
    bounds: Vec<f64>,
    counts: Vec<u64>,
    sum: Option<f64>,
    count: u64,
    max_buckets: usize,
) -> Result<Histogram, Rejection> {
    if counts.len() > max_buckets {
        return Err(Rejection::new(
            "bucketCounts",
            "too_many",
            format!("has {} buckets; the limit is {max_buckets}", counts.len()),
        ));
    }
    if bounds.iter().any(|b| !b.is_finite()) || bounds.windows(2).any(|w| w[0] >= w[1]) {
        return Err(Rejection::new(
            "explicitBounds",
            "invalid_value",
            "bounds must be finite and increase strictly",
        ));
    }
    if sum.is_some_and(|s| !s.is_finite()) {
        return Err(Rejection::new(
            "sum",
            "invalid_value",
            "must be a finite number",
        ));
    }
    metric::check_total(&counts, count)?;
    Ok(Histogram {
        bounds,
        counts,
        sum: sum.unwrap_or(0.0),
        count,
    })
}

/// An exponential histogram as explicit buckets, without loss: each exponential
/// bucket `(base^i, base^(i+1)]` (mirrored for negatives) becomes an explicit
/// bucket with the same edges, the zero bucket one around zero, and empty
/// buckets fill the gaps, so that percentile queries see the same distribution.
fn exponential_to_explicit(
    point: &ExponentialHistogramDataPoint,
    max_buckets: usize,
) -> Result<Histogram, Rejection> {
    if !(-10..=20).contains(&point.scale) {
        return Err(Rejection::new(
            "scale",
            "invalid_value",
            "must be between -10 and 20",
        ));
    }
    // Checked before any bucket is built: the buckets given, plus at most four
    // around them (below, zero, the gap to the first positive, above).
    let given = point.negative.as_ref().map_or(0, |b| b.bucket_counts.len())
        + point.positive.as_ref().map_or(0, |b| b.bucket_counts.len());
    if given > max_buckets {
        return Err(Rejection::new(
            "bucketCounts",
            "too_many",
            format!("has {given} buckets; the limit is {max_buckets}"),
        ));
    }
    let base_log2 = (-f64::from(point.scale)).exp2();
    let edge = |index: i64| (index as f64 * base_log2).exp2();
    let zero_edge = point.zero_threshold.abs();
    let mut bounds = Vec::new();
    let mut counts = Vec::new();
    // Negative buckets, most negative first: bucket i holds [-base^(i+1), -base^i).
    if let Some(negative) = &point.negative
        && !negative.bucket_counts.is_empty()
    {
        let offset = i64::from(negative.offset);
        let last = offset + negative.bucket_counts.len() as i64 - 1;
        // (-inf, -base^(last+1)] is empty.
        bounds.push(-edge(last + 1));
        counts.push(0);
        for index in (offset..=last).rev() {
            bounds.push(-edge(index));
            counts.push(negative.bucket_counts[(index - offset) as usize]);
        }
    }
    // The zero bucket: values within the zero threshold.
    let below_zero = bounds.last().copied().unwrap_or(f64::NEG_INFINITY);
    if zero_edge > 0.0 && -zero_edge > below_zero {
        bounds.push(-zero_edge);
        counts.push(0);
    }
    if bounds.last().is_none_or(|b| *b < zero_edge) {
        bounds.push(zero_edge);
        counts.push(point.zero_count);
    } else if let Some(c) = counts.last_mut() {
        *c += point.zero_count;
    }
    if let Some(positive) = &point.positive
        && !positive.bucket_counts.is_empty()
    {
        let offset = i64::from(positive.offset);
        let first_edge = edge(offset);
        if first_edge > zero_edge {
            bounds.push(first_edge);
            counts.push(0);
        }
        for (k, count) in positive.bucket_counts.iter().enumerate() {
            bounds.push(edge(offset + k as i64 + 1));
            counts.push(*count);
        }
    }
    // Above the last bound: empty.
    counts.push(0);
    let (bounds, counts) = fold_collisions(bounds, counts);
    check_histogram(bounds, counts, point.sum, point.count, max_buckets)
}

/// Float edges may collide at extreme scales or offsets; a bound not above the
/// previous one is dropped and its bucket folded into the previous bucket, in
/// one pass. `counts` has one more element than `bounds`.
fn fold_collisions(bounds: Vec<f64>, counts: Vec<u64>) -> (Vec<f64>, Vec<u64>) {
    let mut kept_bounds: Vec<f64> = Vec::with_capacity(bounds.len());
    let mut kept_counts: Vec<u64> = Vec::with_capacity(counts.len());
    let mut counts = counts.into_iter();
    // Bucket i ends at bound i; the last bucket is above every bound.
    for (bound, count) in bounds.into_iter().zip(counts.by_ref()) {
        match (kept_bounds.last(), kept_counts.last_mut()) {
            (Some(last), Some(c)) if bound <= *last => *c = c.saturating_add(count),
            _ => {
                kept_bounds.push(bound);
                kept_counts.push(count);
            }
        }
    }
    kept_counts.extend(counts);
    (kept_bounds, kept_counts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets;

    #[test]
    fn attributes_are_refused_over_the_count_a_bad_key_or_a_long_checked_value() {
        let limits = crate::config::Limits {
            max_properties: 2,
            max_value_length: 5,
            ..Default::default()
        };
        let pairs = |items: &[(&str, &str)]| -> Attributes {
            items
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let ok = pairs(&[("a", "1"), ("b", "2")]);
        assert!(check_attributes("attributes", &ok, &limits, Values::Checked).is_ok());
        let many = pairs(&[("a", "1"), ("b", "2"), ("c", "3")]);
        let refused =
            check_attributes("resource.attributes", &many, &limits, Values::Checked).unwrap_err();
        assert_eq!(
            (refused.field.as_str(), refused.code),
            ("resource.attributes", "too_many")
        );
        assert!(
            refused.reason.contains("max_properties = 2"),
            "{}",
            refused.reason
        );
        let long = pairs(&[("a", "too long")]);
        let refused = check_attributes("attributes", &long, &limits, Values::Checked).unwrap_err();
        assert_eq!(refused.field, "attributes.a");
        assert!(check_attributes("attributes", &long, &limits, Values::Unchecked).is_ok());
        let bad_key = pairs(&[("", "x")]);
        assert!(check_attributes("attributes", &bad_key, &limits, Values::Unchecked).is_err());
    }

    #[test]
    fn exponential_buckets_keep_their_edges() {
        // scale 0: base 2; positive buckets at offset 1: (2,4], (4,8]; 3 zeros.
        let point = ExponentialHistogramDataPoint {
            scale: 0,
            zero_count: 3,
            count: 3 + 5 + 2 + 1,
            sum: Some(40.0),
            positive: Some(Buckets {
                offset: 1,
                bucket_counts: vec![5, 2],
            }),
            negative: Some(Buckets {
                offset: 0,
                bucket_counts: vec![1],
            }),
            ..Default::default()
        };
        let h = exponential_to_explicit(&point, 100).unwrap();
        // (-inf,-2] 0, (-2,-1] 1, (-1,0] 3 zeros, (0,2] 0, (2,4] 5, (4,8] 2, (8,inf) 0
        assert_eq!(h.bounds, vec![-2.0, -1.0, 0.0, 2.0, 4.0, 8.0]);
        assert_eq!(h.counts, vec![0, 1, 3, 0, 5, 2, 0]);
        assert_eq!(h.count, 11);
    }

    #[test]
    fn exponential_counts_must_add_up() {
        let point = ExponentialHistogramDataPoint {
            scale: 1,
            count: 9,
            positive: Some(Buckets {
                offset: 0,
                bucket_counts: vec![1, 2],
            }),
            ..Default::default()
        };
        let err = exponential_to_explicit(&point, 100).unwrap_err();
        assert_eq!(err.field, "count");
    }
}
