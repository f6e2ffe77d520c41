-- The sessions of some hours' events as the automation sees them (records.session_days): per raw
-- hour and session, each UTC date of ts (`d`) and the last day whose `earlier` check reads such a
-- ts (`top`: the date $before_hours after it; sessions/sql/day_events.sql). A session is its
-- session_id, else its visitor_hash (the hashes' sessions are made per hash: conservative). Files
-- written before issue 18 have no visitor_hash (NULL there). Distinct rows: a few per session.
-- reads:  $files (events files of some hours), $before_hours (partitions.SESSION_OWNER_HOURS +
--         SESSION_LOOKBACK_HOURS)
-- writes: nothing (a SELECT: records.py keeps its rows in a temp table)
SELECT DISTINCT raw_hour, coalesce(session_id, visitor_hash) AS session, CAST(ts AS DATE) AS d,
       CAST(ts + to_hours($before_hours::BIGINT) AS DATE) AS top
FROM (SELECT NULL::VARCHAR AS visitor_hash WHERE false
      UNION ALL BY NAME
      SELECT * FROM read_parquet($files, union_by_name = true, hive_partitioning = false))
