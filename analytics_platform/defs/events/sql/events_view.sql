-- The warehouse's `events` view: copies of an event that arrived in different hours are removed
-- here (CONTRACT §3.4: the earliest arrival counts).
-- reads:  {files}: the glob of the events files of the snapshot being published
--         (events/_published/<gen>/*.parquet), as a SQL literal
-- writes: the view `events` of warehouse.duckdb (storage.publish_warehouse)
SELECT * EXCLUDE (raw_key, raw_pos)
FROM read_parquet({files}, union_by_name = true, hive_partitioning = false)
QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY {first_copy_order}) = 1

