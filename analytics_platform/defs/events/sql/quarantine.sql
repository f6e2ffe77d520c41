-- Records that broke the contract, and the parts of objects that could not be decompressed (a
-- damaged object's unreadable rest is one row, placed after the last line read of it).
-- reads:  checked, raw_objects, corrupt_objects (Arrow: key, error, line, raw_hour)
-- writes: the temp table `quarantined` (then one `quarantine/hour=…` file per raw hour);
--         {max_chars}: how much of a record's text is kept
CREATE OR REPLACE TEMP TABLE quarantined AS
-- Nothing of a refused record may be kept that the warehouse may not (docs/PRIVACY.md): its
-- reason can quote a props key (props_bad_value:props.<key>) and is scrubbed; its text is shown
-- decoded (a line that is not UTF-8 with U+FFFD for each bad byte; valid JSON written again,
-- so that \u0040 is @ and \u003f is ?), without the user agent's value and the time zone's
-- (stored nowhere), the query of a path, a referrer or any other text that starts as a URL
-- or a path does (a props url, as the edge cuts it) from its first ? or # (or %3F, %23, \u003f,
-- \u0023: a line that is no JSON is not written again), a control character's escape (a space:
-- in "\u00011.2.3.4" the digits are an address), then scrubbed and cut. A value may end the
-- text without its closing quote (a line cut short: the last of an object cut mid-record, or of
-- a damaged gzip stream), and a key may be written with an escape ("user\u005fagent"). The path
-- is cut at the first of those marks (the lazy *?): with a greedy run, "/a%3Ftoken=S?x" was cut
-- at its "?" and kept the token.
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
           '"(user|time)(?:_|\\u005[fF])(agent|zone)"\s*:\s*"(?:[^"\\]|\\.)*\\?(?:"|$)',
           '"\1_\2":"(removed)"', 'g'),
           '("(?:page(?:_|\\u005[fF])path|referrer)"\s*:\s*"(?:[^"\\]|\\.)*?' ||
           '|"(?:[A-Za-z][A-Za-z0-9+.\-]*:(?:/|\\/)|/|\\/)(?:[^"\\]|\\.)*?)' ||
           '(?:\?|#|%3[fF]|%23|\\u003[fF]|\\u0023)(?:[^"\\]|\\.)*\\?(?:"|$)',
           '\1"', 'g'), '\\(?:[nrtbf]|u00[01][0-9A-Fa-f])', ' ', 'g'), {max_chars})) AS raw_text
FROM refused
UNION ALL
SELECT raw_hour, key, line * 1000, 'corrupt_object', scrub(error) FROM corrupt_objects
