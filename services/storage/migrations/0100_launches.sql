-- Launches: a release going live (D0), its time zone, stabilization window and
-- baseline. Append-only; the current launch is the one declared last.
CREATE TABLE IF NOT EXISTS launches
(
    launch_id String,
    name String,
    release String,
    -- D0 as given (RFC 3339) and as epoch seconds.
    d0 String,
    d0_secs UInt64,
    tz String,
    window_days UInt16,
    baseline_days UInt16,
    -- Rollout stages as JSON: [{"name": "canary 1%", "percent": 1, "starts_at": "..."}].
    stages String,
    created_ms UInt64,
    actor String
)
ENGINE = ReplacingMergeTree(created_ms)
ORDER BY launch_id;
