-- Every webhook delivery attempt of the alert notifier, delivered or failed.
CREATE TABLE IF NOT EXISTS alert_notifications
(
    at_ms UInt64,
    group_key String,
    receiver String,
    url String,
    -- notify, repeat, resolved, escalation or digest.
    reason String,
    status String,
    attempt UInt32,
    http_status UInt16,
    error String,
    alert_ids Array(String)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(toDateTime(intDiv(at_ms, 1000)))
ORDER BY at_ms;
