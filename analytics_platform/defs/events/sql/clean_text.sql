-- A page or source text as kept (CONTRACT §3.5), one expression for all of them: a path cut at
-- its query (duck.py's clean_path), a host lowered, of a referrer only its host (scheme, user
-- part, port and "www." dropped, lowered; '' when it has none), then scrubbed. Evaluated once per
-- distinct (field, text) of a chunk (validation.validated_sql's per_text): values repeat (25
-- paths, 38 referrers among 195k records of measure 1's hour), and the same expressions on every
-- record cost 1.1 CPU-s per 195k. One use of scrub for every field: each use of the macro costs
-- ~40 ms to plan and prepare (its regular expressions compiled) in every statement.
-- reads:  field (the field's name), v (its text)
-- writes: nothing (an expression, in checked.sql's {validated})
scrub(CASE field
    WHEN 'page_path' THEN path_only(v)
    WHEN 'page_host' THEN lower(v)
    WHEN 'referrer' THEN regexp_replace(lower(regexp_extract(v,
        '^[A-Za-z][A-Za-z0-9+.\-]*://(?:[^/?#@]*@)?([^/?#:]+)', 1)), '^www\.', '')
    ELSE v END)
