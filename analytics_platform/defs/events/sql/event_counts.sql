-- Per raw hour: events written, and how many of them are late (the is_late macro of duck.py: they
-- arrived after the window of their own day, CONTRACT §4).
-- reads:  batch_events; $late_hours
-- writes: nothing (the asset's metadata)
SELECT raw_hour, count(*), count(*) FILTER (is_late(ts, $late_hours, raw_hour))
FROM batch_events GROUP BY ALL
