-- The text of each record of a chunk that checked.sql refused, read again from its line: the
-- quarantine shows it (quarantine.sql). Run by the events asset after each chunk's checked.sql,
-- while the chunk's lines are registered. checked.sql does not carry every record's text
-- through the validation's materialised stage for the few it refuses (measure 1's hour,
-- docs/BENCHMARKS.md).
-- reads:  checked, raw_lines; {records}: records.sql over the lines of refused records
--         (a line that is not UTF-8 keeps its bytes in `line` instead, and is not read again)
-- writes: checked.text of the refused records of the chunk
UPDATE checked SET text = r.text
FROM ({records}) r
WHERE checked.reason IS NOT NULL AND checked.line IS NULL AND checked.text IS NULL
  AND checked.obj = r.obj AND checked.raw_pos = r.raw_pos
