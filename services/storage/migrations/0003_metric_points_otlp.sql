-- What OpenTelemetry metrics carry beyond name, labels and value, so that OTLP,
-- Prometheus remote write and /v1/metrics points share one table and one model.
--
-- temporality: counters and histograms are cumulative (totals since the process
-- started; a query takes differences) or delta (each point is the increase since
-- the previous one; a query sums). Gauges are written as cumulative.
-- resource_keys/values: the OTLP resource attributes (service.name, host.name,
-- ...), kept apart from the point's own attributes (label_keys/values); they are
-- part of the series identity (series_id).
--
-- 18.16 has no ADD COLUMN IF NOT EXISTS: the migration runner treats "column
-- already exists" on an ADD COLUMN as done, so one column per statement.
ALTER TABLE metric_points ADD COLUMN temporality Enum8('cumulative' = 1, 'delta' = 2) DEFAULT 'cumulative';
ALTER TABLE metric_points ADD COLUMN unit String DEFAULT '';
ALTER TABLE metric_points ADD COLUMN resource_keys Array(String);
ALTER TABLE metric_points ADD COLUMN resource_values Array(String);
ALTER TABLE metric_points ADD COLUMN scope_name String DEFAULT '';
ALTER TABLE metric_points ADD COLUMN scope_version String DEFAULT '';
