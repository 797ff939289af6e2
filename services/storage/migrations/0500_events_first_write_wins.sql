-- First write wins, and one key cannot replace another key's event.
--
-- Before: `events` was a ReplacingMergeTree(received_at) sorted by (event, day,
-- event_id), so a merge kept the copy of an id received *last*, whoever sent it:
-- a key holding another key's `event_id` (or a Segment UUID `messageId`) could
-- replace that event once parts merged.
--
-- Now: merges keep the copy received *first* (`first_arrival`, the greatest for
-- the earliest `received_at`, is the version), and `api_key` ends the sorting
-- key, so that merges fold only the copies one key sent (its retries). A copy
-- another key sends later stays beside the event, as evidence, and reads fold
-- the copies of an id with `argMin(..., received_at)`: the first copy received
-- is the event everywhere.
--
-- A MergeTree's engine and sorting key cannot be changed in place on 18.16, so
-- the table is copied: a large table takes as long as an INSERT ... SELECT of
-- it (raise clickhouse.background_query_timeout_secs for `hypercare migrate` if
-- it is cut). Each step can run again after a failure. `first_arrival` is
-- MATERIALIZED: computed on insert, left out of `SELECT *`, so `events` reads
-- as before and `events_recent`, its hour-sorted copy, keeps its columns.
DROP TABLE IF EXISTS events_v2;

CREATE TABLE events_v2
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
    api_key String,
    first_arrival UInt32 MATERIALIZED toUInt32(4294967295 - toUInt32(received_at))
)
ENGINE = ReplacingMergeTree(first_arrival)
PARTITION BY toYYYYMM(timestamp)
ORDER BY (event, toDate(timestamp), event_id, api_key);

INSERT INTO events_v2 (event_id, event, timestamp, timestamp_ms, received_at, source, release, user_id, session_id, value, prop_str_keys, prop_str_values, prop_num_keys, prop_num_values, prop_bool_keys, prop_bool_values, api_key) SELECT event_id, event, timestamp, timestamp_ms, received_at, source, release, user_id, session_id, value, prop_str_keys, prop_str_values, prop_num_keys, prop_num_values, prop_bool_keys, prop_bool_values, api_key FROM events;

-- The feed of events_recent watches `events` by name: it is made again on the new table.
DROP TABLE IF EXISTS events_recent_feed;

DROP TABLE IF EXISTS events_v1;

RENAME TABLE events TO events_v1, events_v2 TO events;

DROP TABLE events_v1;

CREATE MATERIALIZED VIEW IF NOT EXISTS events_recent_feed TO events_recent AS
SELECT event_id, event, timestamp, timestamp_ms, received_at, source, release, user_id, session_id, value, prop_str_keys, prop_str_values, prop_num_keys, prop_num_values, prop_bool_keys, prop_bool_values, api_key FROM events WHERE timestamp >= toDateTime(toDate(now()) - 2);
