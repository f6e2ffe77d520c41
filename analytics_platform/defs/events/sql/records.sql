-- Raw records, one per line. Run by the events asset for each chunk of raw objects.
-- reads:  {lines}: raw_lines (Arrow: obj, pos, line: one raw line with its newline), or some of
--         its rows (refused_texts.sql); raw_objects (obj, key, raw_hour)
-- writes: nothing (a SELECT, the `source` of the contract's validation in checked.sql)
-- Each line still ends with its newline, which JSON allows; records written back to back with no
-- newline ("}{", as Firehose does when nothing appends one) are split apart, each piece then
-- stands or falls on its own. Only a "}{" outside JSON strings separates records (inside one,
-- as in "page_title":"a}{b", it is text): such a line is cut into strings and the rest
-- (a regular expression that reads a string from quote to quote, skipping escaped characters),
-- and only the rest is split. `line` is kept only where the bytes are not UTF-8, for the
-- quarantine to show them.
WITH decoded AS (
    SELECT obj, pos, line, try(decode(line)) AS text FROM {lines}
),
checked AS (
    SELECT obj, pos, CASE WHEN text IS NULL THEN line END AS line, text,
           text IS NOT NULL AND contains(text, '}{') AND NOT json_valid(text) AS glued
    FROM decoded
),
pieces AS (
    SELECT obj, pos, line, glued,
           CASE WHEN glued THEN string_split(array_to_string(list_transform(
                    regexp_extract_all(rtrim(text, chr(10)), '"(?:[^"\\]|\\.)*"|[^"]+|"'),
                    lambda t: CASE WHEN t[1] = '"' THEN t
                                   ELSE replace(t, '}{', '}' || chr(10) || '{') END), ''),
                    chr(10))
                ELSE [text] END AS parts
    FROM checked
)
-- a whole line is piece 0 of its line; glued records are pieces 1, 2, …
SELECT o.raw_hour, p.obj,
       p.pos * 1000 + CASE WHEN glued THEN generate_subscripts(parts, 1) ELSE 0 END AS raw_pos,
       p.line, unnest(parts) AS text
FROM pieces p JOIN raw_objects o USING (obj)
