-- The checked rows that are a later copy of an event of the same hour (CONTRACT §3.4: the earliest
-- arrival wins), by rowid. Copies are rare (a retried beacon), so the window runs only over the
-- event_ids seen more than once, on narrow rows: ranking every row would move all of their columns
-- through a sort, which cost three times as much on a million-event hour (docs/BENCHMARKS.md).
-- reads:  checked, user_agents (Arrow: user_agent, is_bot, …), raw_objects
-- writes: the temp table `later_copies` (events.sql leaves its rows out)
WITH human AS (
    SELECT c.rowid AS rid, c.raw_hour, c.event_id, c.ingest_ts, c.event_ts, c.obj, c.raw_pos
    FROM checked c JOIN user_agents ua USING (user_agent)
    WHERE c.reason IS NULL AND NOT ua.is_bot
),
copied AS (SELECT raw_hour, event_id FROM human GROUP BY ALL HAVING count(*) > 1)
SELECT rid FROM (
    SELECT h.*, o.key AS raw_key
    FROM human h SEMI JOIN copied USING (raw_hour, event_id) JOIN raw_objects o USING (obj))
QUALIFY row_number() OVER (PARTITION BY raw_hour, event_id ORDER BY {first_copy_order}) > 1
