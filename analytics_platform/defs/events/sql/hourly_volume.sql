-- The latest hour's event count against the same hour of day over the 7 days before: median and
-- median absolute deviation (robust to one odd day). Run by the events_hourly_volume check.
-- reads:  $files (events/hour=… files of the latest hour and the same hour 1-7 days before)
-- writes: nothing (the check's result)
WITH per_hour AS (
    SELECT raw_hour, count(*) AS n FROM read_parquet($files, hive_partitioning = false) GROUP BY raw_hour
),
latest AS (SELECT max(raw_hour) AS h FROM per_hour),
history AS (  -- the same hour of day over the 7 days before
    SELECT p.n FROM per_hour p, latest
    WHERE p.raw_hour IN (SELECT latest.h - to_days(d) FROM range(1, 8) t(d))
)
SELECT (SELECT h FROM latest),
       (SELECT n FROM per_hour WHERE raw_hour = (SELECT h FROM latest)),
       (SELECT median(n) FROM history),
       (SELECT median(abs(n - (SELECT median(n) FROM history))) FROM history),
       (SELECT count(*) FROM history)
