-- Log records received over OTLP/HTTP.
--
-- Idempotency: an exporter that retries sends the same records again. log_id is a
-- 64-bit hash (xxh3, computed by the service) of everything the record carries, and
-- the sorting key ends with it, so merges of this ReplacingMergeTree fold the
-- copies; exact reads use FINAL or GROUP BY log_id.
--
-- timestamp is the record's time, or its observed time when the time is unset,
-- or the receive time when both are; timestamp_ns keeps the sub-second part.
-- service is the resource's service.name, the usual first filter.
-- The body is kept as text: a string body as is, any other value as JSON.
CREATE TABLE IF NOT EXISTS logs
(
    log_id UInt64,
    timestamp DateTime,
    timestamp_ns UInt32,
    observed_timestamp DateTime,
    received_at DateTime,
    service String,
    severity_number UInt8,
    severity_text String,
    body String,
    event_name String,
    attribute_keys Array(String),
    attribute_values Array(String),
    resource_keys Array(String),
    resource_values Array(String),
    scope_name String,
    scope_version String,
    trace_id String,
    span_id String,
    flags UInt32,
    api_key String
)
ENGINE = ReplacingMergeTree(received_at)
PARTITION BY toYYYYMM(timestamp)
ORDER BY (service, timestamp, log_id);
