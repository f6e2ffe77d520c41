-- Which days' sessions the events of some hours can change: for every session with events in one
-- of those hours, the dates of its first and last event over the hours around them (a session
-- that crosses midnight changes both days), and the dates of its events in the hour itself.
-- Distinct rows only: a handful per hour.
-- reads:  $here (the events files of the hours just written), $near (those and the events files
--         of the hours around them); {session_key}: the column that names a session
-- writes: nothing (a SELECT)
WITH here AS (
    SELECT raw_hour, {session_key} AS session, CAST(min(ts) AS DATE) AS h_lo,
           CAST(max(ts) AS DATE) AS h_hi
    FROM read_parquet($here, union_by_name = true, hive_partitioning = false)
    GROUP BY ALL
),
span AS (
    SELECT {session_key} AS session, CAST(min(ts) AS DATE) AS lo, CAST(max(ts) AS DATE) AS hi
    FROM read_parquet($near, union_by_name = true, hive_partitioning = false)
    WHERE {session_key} IN (SELECT session FROM here) OR {session_key} IS NULL
    GROUP BY ALL
)
SELECT DISTINCT h.raw_hour, least(h.h_lo, s.lo) AS lo, greatest(h.h_hi, s.hi) AS hi, h.h_lo,
       h.h_hi
FROM here h LEFT JOIN span s ON h.session IS NOT DISTINCT FROM s.session
ORDER BY ALL
