-- Every delivery attempt of the scheduled daily report (services/report/src/delivery).
--
-- The scheduler reads it to know what was delivered: a (launch_id, day,
-- target_id) with a `delivered` or `failed` row is never sent again, so a
-- restart does not resend. `target` is what may be shown (a webhook URL
-- without its secret path, or the folder); `target_id` a digest of the full
-- target, since two webhooks may redact alike. `status` is `retrying` (failed,
-- another attempt follows), `delivered` or `failed` (the last attempt).
CREATE TABLE IF NOT EXISTS report_deliveries
(
    at_ms UInt64,
    launch_id String,
    day Int32,
    target_id String,
    target String,
    -- json, slack, teams or folder.
    format String,
    attempt UInt32,
    status String,
    http_status UInt16,
    error String
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(toDateTime(intDiv(at_ms, 1000)))
ORDER BY at_ms;
