-- The `events` rows for an export (CONTRACT §3.4: one copy per event_id, the earliest arrival),
-- without the warehouse view's window over every event: DuckDB holds a window in memory (the
-- view ran out of a 512 MB limit exporting 1M events), while an aggregate, a join and a sort
-- spill to disk. Each hour's file already has one row per event_id, so copies are only the
-- rare retries that arrived in another hour: the event_ids seen in more than one file are found
-- with an aggregate, the copy that counts among those few rows with the same window as the
-- view, and every other row passes as it is.
-- reads:  {files}: the glob of the files the warehouse's events view reads (its published
--         snapshot, events/_published/<gen>/*.parquet: export.published_files), as a SQL
--         literal; $first, $after
--         (the UTC days of ts: first inclusive, after exclusive)
WITH raw AS (
    SELECT * FROM read_parquet({files}, union_by_name = true, hive_partitioning = false)
),
twice AS (SELECT event_id FROM raw GROUP BY event_id HAVING count(*) > 1),
kept AS (
    SELECT * FROM raw ANTI JOIN twice USING (event_id)
    UNION ALL BY NAME
    SELECT * FROM (SELECT * FROM raw SEMI JOIN twice USING (event_id))
    QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY {first_copy_order}) = 1
)
SELECT * EXCLUDE (raw_key, raw_pos) FROM kept
WHERE ts >= coalesce($first, '-infinity'::TIMESTAMP) AND ts < coalesce($after, 'infinity'::TIMESTAMP)
ORDER BY ts, event_id
