-- An anomalous hour in words: its page views and the source that sent most of them (utm_source,
-- else the referring host when it is not the site itself, else "(direct)").
-- reads:  $files (events/hour=… of the hour)
-- writes: nothing (an alert's numbers)
WITH views AS (
    SELECT coalesce(nullif(lower(trim(utm_source)), ''),
                    CASE WHEN referrer_host <> page_host THEN referrer_host END,
                    '(direct)') AS source
    FROM read_parquet($files, hive_partitioning = false)
    WHERE event_type = 'page_view'
),
sources AS (SELECT source, count(*) AS n FROM views GROUP BY source)
SELECT (SELECT count(*) FROM views) AS pageviews,
       (SELECT source FROM sources ORDER BY n DESC, source LIMIT 1) AS top_source,
       (SELECT max(n) FROM sources) AS top_source_pageviews
