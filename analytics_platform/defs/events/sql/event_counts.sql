-- Per raw hour: events written, and how many of them are late (see late_events.sql).
-- reads:  batch_events; $late_hours
-- writes: nothing (the asset's metadata)
SELECT raw_hour, count(*),
       count(*) FILTER (raw_hour >= date_trunc('day', ts) + to_hours($late_hours::BIGINT))
FROM batch_events GROUP BY ALL
