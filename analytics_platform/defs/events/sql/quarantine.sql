-- Records that broke the contract, and the parts of objects that could not be decompressed (a
-- damaged object's unreadable rest is one row, placed after the last line read of it).
-- reads:  checked, raw_objects, corrupt_objects (Arrow: key, error, line, raw_hour)
-- writes: the temp table `quarantined` (then one `quarantine/hour=…` file per raw hour);
--         {max_chars}: how much of a record's text is kept
CREATE OR REPLACE TEMP TABLE quarantined AS
SELECT c.raw_hour, o.key AS raw_key, c.raw_pos, c.reason,
       CASE WHEN c.text IS NULL
            THEN '\x' || left(hex(c.line), least({max_chars}, 2 * octet_length(c.line) - 2))
            -- the user agent is kept nowhere in the lake, nor a query string (docs/PRIVACY.md):
            -- the user agent's value goes, and a path's or referrer's from its first ? or #
            ELSE scrub(left(regexp_replace(regexp_replace(rtrim(c.text, chr(10)),
                     '"user_agent"\s*:\s*"(?:[^"\\]|\\.)*"', '"user_agent":"(removed)"', 'g'),
                     '("(?:page_path|referrer)"\s*:\s*"[^"\\?#]*)(?:\?|#|%3[fF]|%23)(?:[^"\\]|\\.)*"',
                     '\1"', 'g'), {max_chars}))
            END AS raw_text
FROM checked c JOIN raw_objects o USING (obj) WHERE c.reason IS NOT NULL
UNION ALL
SELECT raw_hour, key, line * 1000, 'corrupt_object', scrub(error) FROM corrupt_objects
