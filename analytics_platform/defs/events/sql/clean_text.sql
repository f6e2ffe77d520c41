-- A page or source text as kept (CONTRACT §3.5) before its scrub, one expression for all of
-- them: a path cut at its query (duck.py's path_only), a host lowered, of a referrer only its
-- host (scheme, user part, port and "www." dropped, lowered; '' when it has none). Evaluated once
-- per distinct (field, text) of a chunk (validation.validated_sql's per_text): values repeat (25
-- paths, 38 referrers among 195k records of measure 1's hour), and the same expressions on every
-- record cost 1.1 CPU-s per 195k. The scrub follows once per batch, on the few texts it could
-- change (duck.scrub_maybe_sql, texts_scrubbed.sql): the macro cost every chunk's statement
-- ~40 ms to plan and prepare (its regular expressions compiled), rows or none.
-- reads:  field (the field's name), v (its text)
-- writes: nothing (an expression, in checked.sql's {validated})
CASE field
    WHEN 'page_path' THEN path_only(v)
    WHEN 'page_host' THEN lower(v)
    WHEN 'referrer' THEN regexp_replace(lower(regexp_extract(v,
        '^[A-Za-z][A-Za-z0-9+.\-]*://(?:[^/?#@]*@)?([^/?#:]+)', 1)), '^www\.', '')
    ELSE v END
