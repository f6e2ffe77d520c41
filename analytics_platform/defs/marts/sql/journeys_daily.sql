-- journeys_daily: one row per day and path: the pages of a session's first 2, 3, 4 or 5 page
-- views from its entry page, a page viewed again right after itself (a reload) counting once,
-- kept only when at least $min_visitors distinct visitors took it that day (CONTRACT §5).
-- reads:  s (the day's sessions), e (their events); $min_visitors (k, the resource's
--         journey_min_visitors)
-- writes: journeys_daily/date=…/part.parquet
WITH views AS (
    SELECT session_id, page_path, ts, event_id,
           lag(page_path) OVER (PARTITION BY session_id ORDER BY ts, event_id) AS previous
    FROM e
    WHERE event_type = 'page_view'
),
steps AS (
    SELECT session_id, page_path,
           row_number() OVER (PARTITION BY session_id ORDER BY ts, event_id) AS step
    FROM views
    WHERE previous IS DISTINCT FROM page_path
),
journeys AS (
    SELECT session_id, list(page_path ORDER BY step) AS pages
    FROM steps
    WHERE step <= 5
    GROUP BY session_id
    HAVING count(*) >= 2
),
-- each session counts once for every prefix of its journey: a path's count is the sessions
-- whose journey starts with it (what a Sankey diagram's links need)
prefixes AS (
    SELECT session_id, pages, unnest(range(2, len(pages) + 1)) AS steps FROM journeys
)
SELECT s.session_date AS date, p.pages[1] AS entry_page, p.steps, p.pages[1:p.steps] AS path,
       count(*) AS sessions,
       count(DISTINCT s.visitor_key) AS visitors
FROM prefixes p JOIN s USING (session_id)
GROUP BY s.session_date, p.steps, p.pages[1:p.steps], p.pages[1]
HAVING count(DISTINCT s.visitor_key) >= $min_visitors
ORDER BY p.steps, sessions DESC, path
