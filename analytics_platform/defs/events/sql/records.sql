-- Raw records, one per line. Run by the events asset for each chunk of raw objects.
-- reads:  raw_lines (Arrow: obj, pos, line: one raw line with its newline), raw_objects (obj, key, raw_hour)
-- writes: nothing (a SELECT, the `source` of the contract's validation in checked.sql)
-- Each line still ends with its newline, which JSON allows; records written back to back with no
-- newline ("}{", as Firehose does when nothing appends one) are split apart, each piece then
-- stands or falls on its own. `line` is kept only where the bytes are not UTF-8, for the
-- quarantine to show them.
WITH decoded AS (
    SELECT obj, pos, line, try(decode(line)) AS text FROM raw_lines
),
checked AS (
    SELECT obj, pos, CASE WHEN text IS NULL THEN line END AS line, text,
           text IS NOT NULL AND contains(text, '}{') AND NOT json_valid(text) AS glued
    FROM decoded
),
pieces AS (
    SELECT obj, pos, line, glued,
           CASE WHEN glued THEN string_split(
                    replace(rtrim(text, chr(10)), '}{', '}' || chr(10) || '{'), chr(10))
                ELSE [text] END AS parts
    FROM checked
)
-- a whole line is piece 0 of its line; glued records are pieces 1, 2, …
SELECT o.raw_hour, p.obj,
       p.pos * 1000 + CASE WHEN glued THEN generate_subscripts(parts, 1) ELSE 0 END AS raw_pos,
       p.line, unnest(parts) AS text
FROM pieces p JOIN raw_objects o USING (obj)
