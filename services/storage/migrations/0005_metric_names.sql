-- The Prometheus names of OpenTelemetry metrics, so that a query or rule may name
-- `http_server_request_duration_seconds` and read OTLP's
-- `http.server.request.duration` (unit `s`): points are stored once, under the
-- name they were sent with; this view keeps, per name that differs from its
-- Prometheus form, the pair (prom_name, name), and reads match
-- `name IN (SELECT ? UNION ALL SELECT name FROM metric_names WHERE prom_name = ?)`.
--
-- OpenTelemetry's Prometheus compatibility rules (specification, "Prometheus
-- and OpenMetrics compatibility"), for names with a `.` or a unit (Prometheus
-- remote write has neither, so its names are never rewritten): characters
-- outside [a-zA-Z0-9_:] become `_` (runs of `_` become one); the unit without
-- its `{annotations}` is appended as a word (`s` seconds, `ms` milliseconds,
-- `By` bytes, `X/Y` X_per_Y, ...; not when the name already ends with it); a
-- unit `1` on a gauge appends `ratio`; counters (monotonic sums) append `_total`.
CREATE MATERIALIZED VIEW IF NOT EXISTS metric_names
ENGINE = ReplacingMergeTree()
ORDER BY (prom_name, name)
AS SELECT
    replaceRegexpAll(replaceRegexpAll(name, '[^a-zA-Z0-9_:]', '_'), '__+', '_') AS base,
    replaceRegexpAll(unit, '\\{[^}]*\\}', '') AS bare_unit,
    replaceRegexpAll(
        if(position(bare_unit, '/') > 0,
            concat(
                transform(splitByChar('/', bare_unit)[1],
                    ['d', 'h', 'min', 's', 'ms', 'us', 'ns', 'By', 'KiBy', 'MiBy', 'GiBy', 'TiBy', 'KBy', 'MBy', 'GBy', 'TBy', 'm', 'V', 'A', 'J', 'W', 'g', 'Cel', 'Hz', '1', '%'],
                    ['days', 'hours', 'minutes', 'seconds', 'milliseconds', 'microseconds', 'nanoseconds', 'bytes', 'kibibytes', 'mebibytes', 'gibibytes', 'tebibytes', 'kilobytes', 'megabytes', 'gigabytes', 'terabytes', 'meters', 'volts', 'amperes', 'joules', 'watts', 'grams', 'celsius', 'hertz', '', 'percent'],
                    splitByChar('/', bare_unit)[1]),
                '_per_',
                transform(splitByChar('/', bare_unit)[2],
                    ['s', 'm', 'h', 'd', 'w', 'mo', 'y'],
                    ['second', 'minute', 'hour', 'day', 'week', 'month', 'year'],
                    splitByChar('/', bare_unit)[2])),
            if(bare_unit = '1' AND kind = 'gauge', 'ratio',
                transform(bare_unit,
                    ['d', 'h', 'min', 's', 'ms', 'us', 'ns', 'By', 'KiBy', 'MiBy', 'GiBy', 'TiBy', 'KBy', 'MBy', 'GBy', 'TBy', 'm', 'V', 'A', 'J', 'W', 'g', 'Cel', 'Hz', '1', '%'],
                    ['days', 'hours', 'minutes', 'seconds', 'milliseconds', 'microseconds', 'nanoseconds', 'bytes', 'kibibytes', 'mebibytes', 'gibibytes', 'tebibytes', 'kilobytes', 'megabytes', 'gigabytes', 'terabytes', 'meters', 'volts', 'amperes', 'joules', 'watts', 'grams', 'celsius', 'hertz', '', 'percent'],
                    bare_unit))),
        '[^a-zA-Z0-9_:]', '_') AS suffix,
    concat(
        base,
        if(suffix = '' OR endsWith(base, concat('_', suffix)), '', concat('_', suffix)),
        if(kind = 'counter' AND NOT endsWith(base, '_total'), '_total', '')) AS prom_name,
    name
FROM metric_points
WHERE (position(name, '.') > 0 OR unit != '') AND prom_name != name;
