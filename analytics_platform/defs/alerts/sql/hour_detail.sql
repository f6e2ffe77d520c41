-- An anomalous hour in words: its page views and sessions, and the source that sent most of its
-- sessions, attributed as the sessions mart attributes a session (sessions/sql/sessions.sql):
-- from the session's first page view (else its first event) by ts, event_id: its utm_source,
-- else its referring host when that is not the site itself (page_host without "www.", or a
-- subdomain of it; referrer_host already has "www." cut), else "(direct)". The host is kept
-- as the source (the mart names it from the referrer table: news.ycombinator.com is
-- "Hacker News" there), which is what a person on call looks up. The first page view is looked
-- for in the hour before as well, so a session that began then keeps its source instead of
-- being credited to the site's own pages. Counting page views by each view's own referrer
-- credited every visit's second page to the site itself.
-- reads:  $window (the files of the hour before and of the hour), once; $files (the hour's)
--         names the rows of the hour itself
-- writes: nothing (an alert's numbers)
WITH win AS (
    SELECT coalesce(session_id, event_id) AS sid, event_type, ts, event_id, utm_source,
           referrer_host, page_host, list_contains($files, filename) AS in_hour
    FROM read_parquet($window, hive_partitioning = false, filename = true)
),
hour_views AS (
    SELECT sid, count(*) AS pageviews
    FROM win
    WHERE in_hour AND event_type = 'page_view'
    GROUP BY ALL
),
touch AS (
    SELECT sid,
           coalesce(
               arg_min({'utm_source': utm_source, 'referrer_host': referrer_host,
                        'page_host': page_host}, (ts, event_id))
                   FILTER (event_type = 'page_view'),
               arg_min({'utm_source': utm_source, 'referrer_host': referrer_host,
                        'page_host': page_host}, (ts, event_id))) AS t
    FROM win
    WHERE sid IN (SELECT sid FROM hour_views)
    GROUP BY ALL
),
sources AS (
    SELECT CASE WHEN nullif(lower(trim(a.t.utm_source)), '') IS NOT NULL
                    THEN lower(trim(a.t.utm_source))
                WHEN a.t.referrer_host IS NOT NULL
                     AND NOT self_referral(a.t.referrer_host, a.t.page_host)
                    THEN a.t.referrer_host
                ELSE '(direct)' END AS source,
           count(*) AS sessions, sum(v.pageviews) AS pageviews
    FROM hour_views v JOIN touch a USING (sid)
    GROUP BY ALL
)
SELECT (SELECT sum(pageviews) FROM hour_views) AS pageviews,
       (SELECT count(*) FROM hour_views) AS sessions,
       s.source AS top_source, s.sessions AS top_source_sessions,
       s.pageviews AS top_source_pageviews
FROM (SELECT 1) LEFT JOIN (SELECT * FROM sources
                           ORDER BY sessions DESC, pageviews DESC, source LIMIT 1) s ON true
