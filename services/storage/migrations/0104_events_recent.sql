-- The last days of `events` again, sorted by hour: `events` is sorted by
-- (event, day, event_id), so reading the last hour of today means reading all
-- of today; here an hour range reads that hour. KPI queries read their recent,
-- not yet rolled-up hours from this table (services/kpis/src/query.rs); the
-- rollup worker drops its partitions older than a few days.
--
-- Filled by a materialized view on every insert into `events` (the rows of the
-- last three UTC days; late and retried events included, and reads fold copies
-- by event_id as on `events`), and at migration time with the last three days
-- already stored.
CREATE TABLE IF NOT EXISTS events_recent AS events
ENGINE = MergeTree
PARTITION BY toYYYYMMDD(timestamp)
ORDER BY (toStartOfHour(timestamp), event);

CREATE MATERIALIZED VIEW IF NOT EXISTS events_recent_feed TO events_recent AS
SELECT * FROM events WHERE timestamp >= toDateTime(toDate(now()) - 2);

INSERT INTO events_recent SELECT * FROM events WHERE timestamp >= toDateTime(toDate(now()) - 2);
