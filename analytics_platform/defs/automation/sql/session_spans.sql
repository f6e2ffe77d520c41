-- Which days' sessions the events of some hours can change: for every session with events in one
-- of those hours (now, or before the run that rewrote them: an erased event changes its days as
-- much as a new one), the dates of ts it has in the hour with the last day that reads each
-- (`reads`, from hour_sessions.sql), and every date of ts it has over the hours around them
-- (`dates`). A day's sessions depend on a session only through its events dated that day (CONTRACT
-- §4): the distinct dates, not the range from the first to the last, which a device clock a year
-- off made 340 days. Distinct rows only: a handful per hour.
-- reads:  the temp tables `hour_sessions` (the hours' events now) and `hour_sessions_before` (as
--         they were), {near}: session ids, visitor hashes and ts of the events files of the hours
--         around them (records.session_days)
-- writes: nothing (a SELECT)
WITH here AS (
    SELECT * FROM hour_sessions
    UNION
    SELECT * FROM hour_sessions_before
),
dated AS (
    SELECT coalesce(session_id, visitor_hash) AS session, CAST(ts AS DATE) AS d
    FROM ({near})
    WHERE coalesce(session_id, visitor_hash) IN (SELECT session FROM here)
    UNION
    SELECT session, d FROM here
),
dates AS (SELECT session, list(d ORDER BY d) AS dates FROM dated GROUP BY session),
reads AS (
    SELECT raw_hour, session, list_sort(list_distinct(list({'d': d, 'top': top}))) AS reads
    FROM here GROUP BY ALL
)
SELECT DISTINCT r.raw_hour, r.reads, s.dates
FROM reads r JOIN dates s USING (session)
ORDER BY ALL
