-- The page and source texts that checked.sql left unscrubbed where scrub could change them
-- (`texts_unscrubbed`: duck.scrub_maybe_sql of one of the record's texts), scrubbed once per
-- distinct (field, text), once per batch after its last chunk, and only when a batch has any.
-- One use of the macro for all the fields: each use costs ~40 ms to plan and compile (its
-- regular expressions), which checked.sql paid in every chunk, rows or none (201 chunks in the
-- 30-day backfill's events step). A referrer's host that the scrub empties is NULL, as
-- checked.sql makes an empty one.
-- reads:  checked; {columns}, {assignments}, {scrubbed}, {joins}: checked's columns of the
--         cleaned texts (assets.CLEANED_TEXTS), generated so that a text added there is scrubbed
-- writes: checked's page and source texts (and texts_unscrubbed) of those records
UPDATE checked SET {assignments}, texts_unscrubbed = false
FROM (
    WITH flagged AS (
        SELECT rowid AS rid, {columns} FROM checked WHERE texts_unscrubbed
    ),
    texts AS (
        SELECT field, v, scrub(v) AS clean FROM (
            SELECT DISTINCT field, v FROM (
                UNPIVOT (SELECT * EXCLUDE (rid) FROM flagged)
                ON COLUMNS(*) INTO NAME field VALUE v))
    )
    SELECT f.rid, {scrubbed}
    FROM flagged f
    {joins}
) s
WHERE checked.rowid = s.rid
