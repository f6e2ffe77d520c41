-- journeys_daily: one row per day and path: the pages of a session's first 2, 3, 4 or 5 page
-- views from its entry page, a page viewed again right after itself (a reload) counting once,
-- kept only when at least $min_visitors distinct visitors took it that day (CONTRACT §5).
-- reads:  s (the day's sessions), e (their events); $min_visitors (k, the resource's
--         journey_min_visitors)
-- writes: journeys_daily/date=…/part.parquet
-- A session's page views in one ordered list, a view of the page just viewed dropped (a reload),
-- then the first five: one grouping, no window. Two windows (lag, then row_number over the views
-- kept) wrote the same files with 15-25 % more CPU on the 30-day lake (issue 21,
-- docs/BENCHMARKS.md); test_fast_marts.py holds the two to the same bytes.
WITH views AS (
    SELECT session_id, list(page_path ORDER BY ts, event_id) AS seq
    FROM e
    WHERE event_type = 'page_view'
    GROUP BY session_id
),
steps AS (
    -- the first view's previous is NULL, as lag's is (a NULL page_path first is dropped)
    SELECT session_id,
           list_filter(seq, lambda p, i: p IS DISTINCT FROM CASE WHEN i > 1 THEN seq[i - 1] END)
               AS pages
    FROM views
),
journeys AS (
    SELECT session_id, pages[1:5] AS pages FROM steps WHERE len(pages) >= 2
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
