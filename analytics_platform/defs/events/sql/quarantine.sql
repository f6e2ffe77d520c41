-- Records that broke the contract, and the parts of objects that could not be decompressed (a
-- damaged object's unreadable rest is one row, placed after the last line read of it).
-- reads:  checked, raw_objects, corrupt_objects (Arrow: key, error, line, raw_hour)
-- writes: the temp table `quarantined` (then one `quarantine/hour=…` file per raw hour);
--         {max_chars}: how much of a record's text is kept
CREATE OR REPLACE TEMP TABLE quarantined AS
-- Nothing of a refused record may be kept that the warehouse may not (docs/PRIVACY.md): its
-- reason can quote a props key (props_bad_value:props.<key>) and is scrubbed; its text is shown
-- decoded (a line that is not UTF-8 with U+FFFD for each bad byte; valid JSON written again,
-- so that \u0040 is @ and \u003f is ?), without the user agent's value, a path's or referrer's
-- query from its first ? or #, a control character's escape (a space: in "\u00011.2.3.4" the
-- digits are an address), then scrubbed and cut.
WITH refused AS (
    SELECT c.raw_hour, o.key AS raw_key, c.raw_pos, c.reason,
           rtrim(coalesce(c.text, utf8_lossy(c.line)), chr(10)) AS t
    FROM checked c JOIN raw_objects o USING (obj) WHERE c.reason IS NOT NULL
)
SELECT raw_hour, raw_key, raw_pos,
       -- "props." stays itself: an address right after it would take it as its user part
       regexp_extract(reason, '^[^.]*\.') || scrub(regexp_replace(reason, '^[^.]*\.', ''))
           AS reason,
       scrub(left(regexp_replace(regexp_replace(regexp_replace(
           coalesce(CAST(try(json(t)) AS VARCHAR), t),
           '"user_agent"\s*:\s*"(?:[^"\\]|\\.)*"', '"user_agent":"(removed)"', 'g'),
           '("(?:page_path|referrer)"\s*:\s*"(?:[^"\\?#]|\\.)*)(?:\?|#|%3[fF]|%23)(?:[^"\\]|\\.)*"',
           '\1"', 'g'), '\\(?:[nrtbf]|u00[01][0-9A-Fa-f])', ' ', 'g'), {max_chars})) AS raw_text
FROM refused
UNION ALL
SELECT raw_hour, key, line * 1000, 'corrupt_object', scrub(error) FROM corrupt_objects
