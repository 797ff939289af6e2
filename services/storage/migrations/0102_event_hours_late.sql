-- Hours that received events late, i.e. after the KPI rollups may have summed
-- them (see services/storage/src/late.rs). A rollup of an hour is trusted only
-- when it was computed after the hour's latest mark; otherwise KPI queries read
-- that hour from `events` until the rollup worker computes it again.
CREATE TABLE IF NOT EXISTS event_hours_late
(
    hour DateTime,
    marked_ms UInt64
)
ENGINE = ReplacingMergeTree(marked_ms)
ORDER BY hour;
