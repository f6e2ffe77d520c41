-- The `quarantine` view before any record was quarantined: its columns (CONTRACT §3.1), no rows,
-- so a query on it answers "nothing" instead of failing on a missing table.
-- reads:  nothing
-- writes: the view `quarantine` of warehouse.duckdb while the lake has no quarantine file
--         (storage.publish_warehouse); the events step's temp table `quarantined` for a batch
--         with nothing to quarantine (assets._quarantine)
SELECT NULL::TIMESTAMP AS raw_hour, NULL::VARCHAR AS raw_key, NULL::BIGINT AS raw_pos,
       NULL::VARCHAR AS reason, NULL::VARCHAR AS raw_text
WHERE false
