-- Business events, one row per accepted event.
--
-- Idempotency: a client that retries a batch sends the same event_id again. The
-- sorting key is (event, day, event_id), so merges of this ReplacingMergeTree fold
-- such copies into one; read queries never rely on merges having happened and
-- count with uniqExact(event_id) (or read with FINAL), so a retried batch never
-- makes a count grow. The day, not the exact time, is in the key because a retried
-- event's skew-corrected timestamp may move by the retry delay.
--
-- Types are the ones ClickHouse 18.16 and 26.x share: no Map, DateTime64 or
-- LowCardinality; properties are parallel key/value arrays, one pair per type.
CREATE TABLE IF NOT EXISTS events
(
    event_id UUID,
    event String,
    timestamp DateTime,
    timestamp_ms UInt16,
    received_at DateTime,
    source String,
    release String,
    user_id String,
    session_id String,
    value Nullable(Float64),
    prop_str_keys Array(String),
    prop_str_values Array(String),
    prop_num_keys Array(String),
    prop_num_values Array(Float64),
    prop_bool_keys Array(String),
    prop_bool_values Array(UInt8),
    api_key String
)
ENGINE = ReplacingMergeTree(received_at)
PARTITION BY toYYYYMM(timestamp)
ORDER BY (event, toDate(timestamp), event_id);
