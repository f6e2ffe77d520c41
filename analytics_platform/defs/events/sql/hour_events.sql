-- One hour's events as stored, sorted. Rows carry `obj` (their object's place in the batch) and
-- get their raw_key (about 105 characters) only once sorted, in a projection over the sorted rows
-- (which keeps their order; a test holds it): carried through the sort, the keys were a sixth
-- of what it held, and on a million-event hour it spilled 612 MB to disk under the default
-- memory limit with them, 340 MB without (docs/BENCHMARKS.md).
-- reads:  {source}: events.sql (the batch's `checked` rows, filtered here to the hour); $hour,
--         $keys (raw_key by obj)
-- writes: events/hour=…/part.parquet (the asset COPYs it there)
SELECT * EXCLUDE (obj, raw_pos), $keys[obj + 1] AS raw_key, raw_pos
FROM (SELECT * FROM {source} WHERE raw_hour = $hour ORDER BY ts, event_id)
