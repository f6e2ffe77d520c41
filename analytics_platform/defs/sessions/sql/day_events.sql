-- The day's de-duplicated human events, each with the session it belongs to (CONTRACT §4). A
-- session belongs to the UTC date of its first event: the day's sessions are the session_ids with
-- an event dated $day and none in the 27 hours before its midnight (the `before` hours and the
-- start of the window: such a session began on an earlier day, or continues one that did,
-- whatever gap the client left across midnight). A session's events are those dated $day and the
-- day after, so no event is counted on two days, however many days a client keeps sending one
-- session_id. The copy of each event that counts is chosen on narrow rows, then only the day's
-- winners are read in full (twice as fast as sorting the wide rows: 7.1 -> 3.7 s on a 1M-event
-- day). `visitor_key`: see the macro in duck.py.
-- Events without a session_id (no consent) are given one first, over everything the window reads
-- (CONTRACT §4): per visitor_hash, in (ts, event_id) order, a session starts at the first event
-- and after every gap of more than $inactivity_minutes; its id is hash_session_id (duck.py) of
-- the hash and its first event, hashed on that first event's row only and carried to the rest of
-- the session by one running window (last_value IGNORE NULLS): a run number (a running sum of
-- the starts) and a first_value over each run were two more sorts and an MD5 per event (issue
-- 21, docs/BENCHMARKS.md). A hash is of one UTC day of arrival and every event arrives after it
-- happens, so all of a hash's events are in the window of any day they can start a session on.
-- reads:  {sources}: the events files of the day's window (and late events: of the day and the
--         next, and of the two dates before, for `earlier`: sessions/inputs.py); {before}: session
--         ids and ts of the hours before it; $day; $inactivity_minutes
--         (contract.SESSION_INACTIVITY_MINUTES)
-- writes: the temp table `day_keys`: the row (file_no, file_row: see below) of each of the day's
--         events, its session and visitor_key (then session_events.sql)
CREATE OR REPLACE TEMP TABLE day_keys AS
WITH read AS NOT MATERIALIZED (
    {sources}
),
-- A row is named by where it is read: (file_no, file_row), its file among the sources' (window
-- files first, then the late files: sessions/assets.build_day) and its row in that file, two
-- integers DuckDB's reader gives for free. Not (raw_key, raw_pos), which names the same row: the
-- raw_key is ~105 characters, and with it the write's hash table of the day's keys was 294 MB
-- and this table 240 MB of the step's 1 GB on a 1.47M-event day, against 136 MB and ~90 MB
-- (issue 21, docs/BENCHMARKS.md).
-- Which copy of each event counts (the earliest arrival), decided on a few narrow columns: the
-- wide rows are never sorted. Copies are rare (a retried beacon), so only the event_ids read
-- more than once are ranked, as in the events asset (ranking every row of the window was a sort
-- of ~700k rows a day), and only their rows read the raw_key and raw_pos the ranking orders by.
-- event_id is never NULL (a required field, CONTRACT §1). The ids read more than once are found
-- by their 64-bit hash (`id_hash`), not by the 36-character text: an id whose hash another id
-- shares is ranked among its own copies only (PARTITION BY event_id), so it is still kept
-- (test_fast_sessions.py cuts the hashes to four values). This statement took 9.50-9.79 CPU-s
-- for eight days of the 30-day benchmark lake against 9.95-10.16 grouping the texts, the files
-- byte-identical (issue 21, docs/BENCHMARKS.md).
narrow AS MATERIALIZED (
    SELECT file_no, file_row, session_id, visitor_hash, event_id, hash(event_id) AS id_hash, ts,
           ingest_ts, event_ts
    FROM read
),
copied AS (SELECT id_hash FROM narrow GROUP BY id_hash HAVING count(*) > 1),
winners AS (
    SELECT file_no, file_row, session_id, visitor_hash, event_id, ts
    FROM narrow ANTI JOIN copied USING (id_hash)
    UNION ALL
    SELECT file_no, file_row, session_id, visitor_hash, event_id, ts FROM (
        SELECT n.*, r.raw_key, r.raw_pos
        FROM narrow n SEMI JOIN copied USING (id_hash)
        JOIN (SELECT file_no, file_row, raw_key, raw_pos FROM read) r USING (file_no, file_row)
        QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY {first_copy_order}) = 1)
),
-- Sessions are made only for the hashes with an event dated $day: a hash's sessions depend on
-- its own events alone (the windows below are per hash), and a hash with no event that day has
-- no session of the day (its session ids, md5 of the hash, match no other hash's). Half of the
-- window's hashed rows are of the day before, whose sessions it never writes.
day_hashes AS (
    SELECT DISTINCT visitor_hash FROM winners
    WHERE session_id IS NULL AND ts >= $day::TIMESTAMP AND ts < $day::TIMESTAMP + INTERVAL 1 DAY
),
hash_gaps AS (
    SELECT file_no, file_row, visitor_hash, event_id, ts,
           coalesce(ts - lag(ts) OVER w > to_minutes($inactivity_minutes::BIGINT), true)::INTEGER
               AS starts
    FROM winners SEMI JOIN day_hashes USING (visitor_hash) WHERE session_id IS NULL
    WINDOW w AS (PARTITION BY visitor_hash ORDER BY ts, event_id)
),
kept AS (
    SELECT file_no, file_row, session_id, ts FROM winners WHERE session_id IS NOT NULL
    UNION ALL
    SELECT file_no, file_row,
           last_value(CASE WHEN starts = 1 THEN hash_session_id(visitor_hash, event_id) END
                      IGNORE NULLS) OVER (PARTITION BY visitor_hash ORDER BY ts, event_id
                                          ROWS UNBOUNDED PRECEDING) AS session_id, ts
    FROM hash_gaps
),
earlier AS (  -- sessions with an event in the 27 hours before the day: an earlier day's
    SELECT session_id FROM (SELECT session_id, ts FROM kept {before})
    WHERE ts >= $day::TIMESTAMP - INTERVAL 27 HOURS AND ts < $day::TIMESTAMP
),
day_sessions AS (
    SELECT DISTINCT session_id FROM kept
    WHERE ts >= $day::TIMESTAMP AND ts < $day::TIMESTAMP + INTERVAL 1 DAY
      AND session_id NOT IN (SELECT session_id FROM earlier WHERE session_id IS NOT NULL)
),
day_rows AS (
    SELECT k.file_no, k.file_row, k.session_id
    FROM kept k SEMI JOIN day_sessions s USING (session_id)
    WHERE k.ts >= $day::TIMESTAMP AND k.ts < $day::TIMESTAMP + INTERVAL 2 DAYS
),
keyed AS MATERIALIZED (
    SELECT r.file_no, r.file_row, d.session_id,
           visitor_of(r.visitor_id, r.visitor_hash, d.session_id) AS visitor
    FROM read r JOIN day_rows d USING (file_no, file_row)
)
-- visitor_key (an MD5) once per visitor, not per event: ~0.3 of ~4.5 CPU-s a day for ~490k
-- events of ~27k visitors (issue 21). `visitor` is never NULL (the session_id is not).
SELECT k.file_no, k.file_row, k.session_id, v.visitor_key
FROM keyed k
JOIN (SELECT visitor, visitor_key(visitor) AS visitor_key FROM (SELECT DISTINCT visitor FROM keyed)) v
  USING (visitor)
