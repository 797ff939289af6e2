-- Alerts, one row per change (append-only): the current state of an alert is its
-- highest version. Written by the one evaluator; read by the alert API and the
-- history (time to acknowledge and to resolve, MTTA/MTTR per tier).
CREATE TABLE IF NOT EXISTS alert_events
(
    alert_id String,
    version UInt32,
    fingerprint String,
    rule String,
    tier String,
    -- pending, firing or resolved (acknowledged = firing with acked_ms > 0).
    state String,
    label_keys Array(String),
    label_values Array(String),
    annotation_keys Array(String),
    annotation_values Array(String),
    value Float64,
    rollback UInt8,
    started_ms UInt64,
    fired_ms UInt64,
    acked_ms UInt64,
    acked_by String,
    resolved_ms UInt64,
    resolved_by String,
    escalation_level UInt8,
    -- What this version changed: pending, fired, value, acked, escalated, resolved.
    change String,
    at_ms UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(toDateTime(intDiv(started_ms, 1000)))
ORDER BY (alert_id, version);
