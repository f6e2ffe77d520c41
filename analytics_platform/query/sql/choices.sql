-- The dashboard's filter choices: every source, every device type and the 200 most viewed pages.
-- reads:  sessions, pages_daily
SELECT (SELECT list(DISTINCT source ORDER BY source) FROM sessions),
       (SELECT list(DISTINCT device_type ORDER BY device_type) FROM sessions
        WHERE device_type IS NOT NULL),
       -- the 200 most viewed pages, from the daily page mart (not every event)
       (SELECT list(page_path ORDER BY n DESC, page_path) FROM (
            SELECT page_path, sum(pageviews) AS n FROM pages_daily
            GROUP BY 1 ORDER BY n DESC, page_path LIMIT 200))
