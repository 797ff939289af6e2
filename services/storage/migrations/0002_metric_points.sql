-- Technical metric points: gauges, monotonic counters and explicit-bucket histograms.
--
-- A series is a metric name plus its sorted label set; series_id is a stable
-- 64-bit hash of both (xxh3, computed by the service) so that queries can group by
-- one integer. A point is identified by (series, time): a retried batch carries the
-- same points and merges fold the copies; read queries use FINAL or argMax by
-- received_at when they must be exact before merges.
--
-- Histograms follow the OpenTelemetry explicit-bucket model: hist_counts has one
-- more element than hist_bounds, counts are per bucket (not cumulative) and the
-- last bucket is (last bound, +Inf).
CREATE TABLE IF NOT EXISTS metric_points
(
    name String,
    kind Enum8('gauge' = 1, 'counter' = 2, 'histogram' = 3),
    series_id UInt64,
    label_keys Array(String),
    label_values Array(String),
    timestamp DateTime,
    timestamp_ms UInt16,
    received_at DateTime,
    value Float64,
    hist_bounds Array(Float64),
    hist_counts Array(UInt64),
    hist_sum Float64,
    hist_count UInt64,
    api_key String
)
ENGINE = ReplacingMergeTree(received_at)
PARTITION BY toYYYYMM(timestamp)
ORDER BY (name, series_id, timestamp, timestamp_ms);
