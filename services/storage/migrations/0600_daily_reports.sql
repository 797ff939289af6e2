-- The daily stabilization reports, one per launch day once the day is over.
--
-- A report is made from what the other tables hold when it is made, then kept
-- here as JSON so that it reads the same tomorrow: late events, alerts resolved
-- later or tickets reclassified do not rewrite a past day's call. `schema` is the
-- shape of `body` (services/report/src/document.rs); a report of another shape
-- is made again. A report made again (`refresh`) is a newer row: the newest
-- `made_ms` wins (readers take argMax, never relying on merges).
CREATE TABLE IF NOT EXISTS daily_reports
(
    launch_id String,
    day Int32,
    date String,
    call String,
    schema UInt32,
    made_ms UInt64,
    body String
)
ENGINE = ReplacingMergeTree(made_ms)
ORDER BY (launch_id, day);
