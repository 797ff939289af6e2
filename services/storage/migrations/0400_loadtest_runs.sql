-- Load test runs: one row per run of the load generator, the capacity baseline
-- of a service. `report` holds the whole JSON report (steps, per-second samples)
-- so that `loadtest compare` can read a run back by its id. The headroom API
-- reads the latest run of a service with max_sustainable_rps > 0.
CREATE TABLE IF NOT EXISTS loadtest_runs
(
    run_id String,
    service String,
    scenario String,
    target String,
    started_at DateTime,
    finished_at DateTime,
    replicas UInt32,
    requests UInt64,
    errors UInt64,
    error_rate Float64,
    p50_ms Float64,
    p99_ms Float64,
    thresholds_passed UInt8,
    slo_p99_ms Float64,
    latency_floor_ms Float64,
    knee_rps Nullable(Float64),
    max_sustainable_rps Float64,
    usl_lambda Nullable(Float64),
    usl_sigma Nullable(Float64),
    usl_kappa Nullable(Float64),
    usl_r2 Nullable(Float64),
    report String
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(started_at)
ORDER BY (service, started_at, run_id);
