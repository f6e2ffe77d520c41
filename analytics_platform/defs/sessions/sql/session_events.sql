-- The day's events in full, sorted as session_events/date=…/part.parquet stores them: the rows of
-- `day_keys` (day_events.sql) read again from the window's files, with their session and
-- visitor_key. Written straight from the files, not from a temp table of the wide rows: filling
-- one (~490k rows a day of the 30-day benchmark lake, which spilled ~160 MB under the 1 GB limit)
-- and scanning it cost more than this second read (issue 21, docs/BENCHMARKS.md). The rows are
-- joined on (file_no, file_row), the sources' own names for them (day_events.sql).
-- {order_by}: sessions/assets.SESSION_EVENTS_ORDER, or nothing on a big day, whose joined rows go
-- to a temp table and are sorted from there (sessions/assets.joined_first).
-- reads:  {sources} (as in day_events.sql), `day_keys`, $day
-- writes: the rows of session_events/date=…/part.parquet (sessions/assets.build_day)
WITH read AS NOT MATERIALIZED (
    {sources}
)
SELECT r.* EXCLUDE (file_no, file_row) REPLACE (d.session_id AS session_id),
       $day::DATE AS session_date, d.visitor_key
FROM read r JOIN day_keys d USING (file_no, file_row)
{order_by}
