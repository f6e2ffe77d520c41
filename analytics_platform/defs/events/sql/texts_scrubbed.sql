-- The page and source texts that checked.sql left unscrubbed where scrub could change them
-- (`texts_unscrubbed`: duck.scrub_maybe_sql of one of the record's texts), scrubbed once per
-- distinct (field, text), once per batch after its last chunk, and only when a batch has any.
-- One use of the macro for all the fields: each use costs ~40 ms to plan and compile (its
-- regular expressions), which checked.sql paid in every chunk, rows or none (201 chunks in the
-- 30-day backfill's events step). A referrer's host that the scrub empties is NULL, as
-- checked.sql makes an empty one.
-- reads:  checked
-- writes: checked's page and source texts (and texts_unscrubbed) of those records
UPDATE checked SET page_path = s.page_path, page_host = s.page_host, page_title = s.page_title,
    referrer_host = s.referrer_host, utm_source = s.utm_source, utm_medium = s.utm_medium,
    utm_campaign = s.utm_campaign, utm_content = s.utm_content, utm_term = s.utm_term,
    texts_unscrubbed = false
FROM (
    WITH flagged AS (
        SELECT rowid AS rid, page_path, page_host, page_title, referrer_host, utm_source,
               utm_medium, utm_campaign, utm_content, utm_term
        FROM checked WHERE texts_unscrubbed
    ),
    texts AS (
        SELECT field, v, scrub(v) AS clean FROM (
            SELECT DISTINCT field, v FROM (
                UNPIVOT (SELECT * EXCLUDE (rid) FROM flagged)
                ON COLUMNS(*) INTO NAME field VALUE v))
    )
    SELECT f.rid, c1.clean AS page_path, c2.clean AS page_host, c3.clean AS page_title,
           nullif(c4.clean, '') AS referrer_host, c5.clean AS utm_source,
           c6.clean AS utm_medium, c7.clean AS utm_campaign, c8.clean AS utm_content,
           c9.clean AS utm_term
    FROM flagged f
    LEFT JOIN texts c1 ON c1.field = 'page_path' AND c1.v = f.page_path
    LEFT JOIN texts c2 ON c2.field = 'page_host' AND c2.v = f.page_host
    LEFT JOIN texts c3 ON c3.field = 'page_title' AND c3.v = f.page_title
    LEFT JOIN texts c4 ON c4.field = 'referrer_host' AND c4.v = f.referrer_host
    LEFT JOIN texts c5 ON c5.field = 'utm_source' AND c5.v = f.utm_source
    LEFT JOIN texts c6 ON c6.field = 'utm_medium' AND c6.v = f.utm_medium
    LEFT JOIN texts c7 ON c7.field = 'utm_campaign' AND c7.v = f.utm_campaign
    LEFT JOIN texts c8 ON c8.field = 'utm_content' AND c8.v = f.utm_content
    LEFT JOIN texts c9 ON c9.field = 'utm_term' AND c9.v = f.utm_term
) s
WHERE checked.rowid = s.rid
