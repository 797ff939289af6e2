-- KPI pieces per UTC hour, computed from `events` with copies of an event folded
-- (services/kpis/src/rollup.rs). Every KPI aggregation combines them exactly over
-- any span of whole hours: counts and sums add, users and values are kept as the
-- hour's distinct users and its values (for unique users and percentiles).
--
-- `measure` is a digest of what the KPI measures (aggregation, filters, property),
-- so a changed definition never reads the old one's rollups. The newest
-- computation of an hour wins (ReplacingMergeTree on computed_ms; reads use FINAL).
CREATE TABLE IF NOT EXISTS kpi_rollups
(
    measure String,
    hour DateTime,
    computed_ms UInt64,
    events UInt64,
    denominator UInt64,
    value_sum Float64,
    value_count UInt64,
    users Array(String),
    values Array(Float64)
)
ENGINE = ReplacingMergeTree(computed_ms)
PARTITION BY toYYYYMM(hour)
ORDER BY (measure, hour)
-- Rows are few but wide (arrays of an hour's users and values): small granules
-- let a query read only its measure's hours, not its neighbours' arrays.
SETTINGS index_granularity = 64;
