-- KPI definitions, every version kept: the file's (checked at start-up) and the
-- API's. The current definition of a KPI is its highest version.
CREATE TABLE IF NOT EXISTS kpi_definitions
(
    kpi_id String,
    version UInt32,
    -- The definition as JSON (the same fields as the YAML file).
    definition String,
    -- `file` or `api`.
    source String,
    at_ms UInt64,
    actor String
)
ENGINE = ReplacingMergeTree(at_ms)
ORDER BY (kpi_id, version);
