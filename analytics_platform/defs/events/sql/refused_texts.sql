-- The text of each record of a chunk that checked.sql refused, read again from its line: the
-- quarantine shows it (quarantine.sql). Run by the events asset after each chunk's checked.sql,
-- while the chunk's lines are registered. checked.sql does not carry every record's text
-- through the validation's materialised stage for the few it refuses (measure 1's hour,
-- docs/BENCHMARKS.md).
-- reads:  checked, raw_lines; {records}: records.sql over `refused_lines`, the lines of the
--         refused records (a line that is not UTF-8 keeps its bytes in `line` instead, and is
--         not read again; a line's records are numbered pos * 1000 + piece, records.sql)
-- writes: checked.text of the refused records of the chunk
WITH refused_lines AS (
    SELECT l.* FROM raw_lines l
    SEMI JOIN (SELECT DISTINCT obj, raw_pos // 1000 AS pos FROM checked
               WHERE reason IS NOT NULL AND line IS NULL AND text IS NULL) b USING (obj, pos)
)
UPDATE checked SET text = r.text
FROM ({records}) r
WHERE checked.reason IS NOT NULL AND checked.line IS NULL AND checked.text IS NULL
  AND checked.obj = r.obj AND checked.raw_pos = r.raw_pos
