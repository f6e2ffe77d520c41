-- The checked rows that are a later copy of an event of the same hour (CONTRACT §3.4: the earliest
-- arrival wins), by rowid. Copies are rare (a retried beacon), so the window runs only over the
-- event_ids seen more than once, on narrow rows: ranking every row would move all of their columns
-- through a sort, which cost three times as much on a million-event hour (docs/BENCHMARKS.md).
-- reads:  human (human.sql), raw_objects
-- writes: the temp table `later_copies` (events.sql leaves its rows out)
WITH copied AS (SELECT raw_hour, event_id FROM human GROUP BY ALL HAVING count(*) > 1)
SELECT rid FROM (
    SELECT h.rid, h.raw_hour, h.event_id, h.ingest_ts, h.event_ts, h.obj, h.raw_pos,
           o.key AS raw_key
    FROM human h SEMI JOIN copied USING (raw_hour, event_id) JOIN raw_objects o USING (obj))
QUALIFY row_number() OVER (PARTITION BY raw_hour, event_id ORDER BY {first_copy_order}) > 1
