-- Silences (Alertmanager-style): matchers over alert labels, a time span, an
-- author and a comment. Every change is a new version; expiring sets ends_ms.
CREATE TABLE IF NOT EXISTS silences
(
    silence_id String,
    version UInt32,
    -- JSON array of {name, op, value}.
    matchers String,
    starts_ms UInt64,
    ends_ms UInt64,
    created_by String,
    comment String,
    at_ms UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (silence_id, version);
