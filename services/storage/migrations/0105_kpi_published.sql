-- The KPI values Hypercare answers, published for dashboards (Grafana reads
-- this table; it never recomputes a KPI). Written by the KPI publisher
-- (services/kpis/src/published.rs) on the rollup worker's cadence, for the
-- current launch: per local day (grain `day`) what `GET /v1/kpis?date=` answers
-- for that day (today at pace, like the board), and per hour (grain `hour`) what
-- `GET /v1/kpis/{id}/series?grain=hour` answers, from the first baseline day to
-- now.
--
-- A row is replaced by the next publication of the same bucket (newest
-- `published_ms` wins; readers use FINAL). `bucket` is the start of the local
-- day or hour as a UTC instant; `date` is the local day (YYYY-MM-DD) and
-- `day_index` its D-N / D+N number. Levels are the KPI's own; `pace_*` are
-- the levels a count or a sum at pace was judged against (else equal to the
-- levels). `status`: ok, warning, critical or no_data.
CREATE TABLE IF NOT EXISTS kpi_published
(
    grain String,
    launch_id String,
    release String,
    kpi_id String,
    title String,
    unit String,
    direction String,
    bucket DateTime,
    date String,
    day_index Int16,
    baseline_day UInt8,
    complete UInt8,
    comparison String,
    value Nullable(Float64),
    target Float64,
    warning Float64,
    critical Float64,
    pace_target Float64,
    pace_warning Float64,
    pace_critical Float64,
    status String,
    baseline Nullable(Float64),
    delta_vs_baseline_pct Nullable(Float64),
    published_ms UInt64
)
ENGINE = ReplacingMergeTree(published_ms)
PARTITION BY toYYYYMM(bucket)
ORDER BY (grain, launch_id, kpi_id, bucket);
