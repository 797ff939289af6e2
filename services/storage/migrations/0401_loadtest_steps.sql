-- One row per step of a load test run: offered and achieved rate, errors,
-- latency percentiles (from the intended send time), Little's-law concurrency,
-- and the target's resource use during the step (CPU cores busy, RSS, and
-- values scraped from its Prometheus /metrics as parallel name/value arrays).
CREATE TABLE IF NOT EXISTS loadtest_steps
(
    run_id String,
    step UInt16,
    started_at DateTime,
    duration_secs Float64,
    offered_rps Float64,
    achieved_rps Float64,
    requests UInt64,
    ok UInt64,
    errors UInt64,
    dropped UInt64,
    error_rate Float64,
    mean_ms Float64,
    p50_ms Float64,
    p90_ms Float64,
    p99_ms Float64,
    p999_ms Float64,
    max_ms Float64,
    concurrency Float64,
    cpu_cores Nullable(Float64),
    rss_bytes Nullable(UInt64),
    scraped_names Array(String),
    scraped_values Array(Float64)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(started_at)
ORDER BY (run_id, step);
