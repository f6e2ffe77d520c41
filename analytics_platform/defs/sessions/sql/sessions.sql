-- One row per session (CONTRACT §4). Ties on ts are broken by the smaller event_id.
-- A session's first event by (ts, event_id) is its row with the smallest `file_row_number`:
-- day_events reads the day's session_events file, sorted by session_id, ts, event_id
-- (sessions/assets.SESSION_EVENTS_ORDER), with each row's place in it. So each "first … ORDER BY
-- ts, event_id" is an arg_min_null on that integer (arg_min_null: the row's value even when
-- NULL, as first gives it), and the exit page, the last page view by ts with ties to the smaller
-- event_id, an arg_max_null on ts before the negated place (a file holds fewer than 2^40 rows).
-- For eight days of the 30-day benchmark lake: 2.57-2.69 CPU-s against 3.20-3.35 with the
-- ordered aggregates, the files byte-identical (issue 21, docs/BENCHMARKS.md);
-- test_fast_sessions.py holds the two to the same files, ties on ts and NULLs included.
-- reads:  day_events (with file_row_number), referrers (the referrer table: pattern, regex,
--         source, medium, priority)
-- writes: sessions/date=…/part.parquet
WITH per_session AS (
    SELECT
        session_id,
        min(ts) AS session_start,
        max(ts) AS session_end,
        any_value(session_date) AS session_date,
        date_diff('millisecond', min(ts), max(ts)) / 1000.0 AS duration_s,
        arg_min_null(visitor_id, file_row_number) AS visitor_id,
        arg_min_null(visitor_hash, file_row_number) AS visitor_hash,
        count(*) AS events,
        count(*) FILTER (event_type = 'page_view') AS pageviews,
        arg_min_null(page_path, file_row_number) FILTER (event_type = 'page_view') AS entry_page,
        arg_max_null(page_path, epoch_us(ts)::HUGEINT * 1099511627776 - file_row_number)
            FILTER (event_type = 'page_view') AS exit_page,
        -- props parsed only on the rows that use them (a CASE, not FILTER, which is applied
        -- after its argument is computed on every row; props are valid JSON, CONTRACT §1):
        -- this statement 0.70-0.84 -> 0.60-0.71 CPU-s on a 483k-event day (issue 21)
        coalesce(max(CASE WHEN event_type = 'scroll_depth'
                          THEN try_cast(props::JSON->>'depth' AS DOUBLE) END), 0)::INTEGER
            AS max_scroll_depth,
        coalesce(max(CASE WHEN event_type = 'time_on_page'
                          THEN try_cast(props::JSON->>'seconds' AS DOUBLE) END), 0)::INTEGER
            AS max_time_on_page,
        count(*) FILTER (event_type IN ('cta_click', 'form_start', 'form_submit'))
            AS interactions,
        count(*) FILTER (event_type = 'cta_click') > 0 AS converted,
        arg_min_null(exp, file_row_number) FILTER (exp IS NOT NULL) AS exp,
        arg_min_null(browser, file_row_number) AS browser,
        arg_min_null(os, file_row_number) AS os,
        arg_min_null(device_type, file_row_number) AS device_type,
        arg_min_null(screen_width, file_row_number) AS screen_width,
        -- the tracker sends the time zone with page views only: the first event that has one
        arg_min_null({'country': country, 'source': country_source}, file_row_number)
            FILTER (country IS NOT NULL) AS geo,
        -- attribution touch: the first page_view, or the first event when there is none
        coalesce(
            arg_min_null({'utm_source': utm_source, 'utm_medium': utm_medium,
                          'utm_campaign': utm_campaign, 'referrer_host': referrer_host,
                          'page_host': page_host}, file_row_number)
                FILTER (event_type = 'page_view'),
            arg_min_null({'utm_source': utm_source, 'utm_medium': utm_medium,
                          'utm_campaign': utm_campaign, 'referrer_host': referrer_host,
                          'page_host': page_host}, file_row_number)
        ) AS touch
    FROM (
        -- a props text without "experiment" has no such key, unless written with an escape
        SELECT *, CASE WHEN (contains(props, 'experiment') OR contains(props, '\'))
                            AND props::JSON->>'experiment' IS NOT NULL
                       THEN {'experiment': props::JSON->>'experiment',
                             'variant': props::JSON->>'variant'} END AS exp
        FROM day_events)
    GROUP BY session_id
),
touches AS (
    SELECT session_id,
           nullif(trim(touch.utm_source), '') AS utm_source,
           nullif(trim(touch.utm_medium), '') AS utm_medium,
           nullif(trim(touch.utm_campaign), '') AS utm_campaign,
           touch.referrer_host AS referrer_host,
           self_referral(touch.referrer_host, touch.page_host) AS self_referral
    FROM per_session
),
-- The referrer table, matched once per distinct host; the most specific pattern wins. A pattern
-- without `*` matches a host equal to it or ending in "." + it: an equi-join on every label
-- suffix of the host (a.b.c: a.b.c, b.c, c); only the `*` patterns need the regex. The regex
-- join over all 1,713 rows cost ~0.12 s per distinct host (see the measurement in
-- docs/PIPELINE.md); test_referrers.py holds the two to the same result.
ref_map AS (
    SELECT h.host,
           arg_max(r.source, r.priority * 10000 + length(r.pattern)) AS source,
           arg_max(r.medium, r.priority * 10000 + length(r.pattern)) AS medium
    FROM (SELECT DISTINCT referrer_host AS host FROM touches WHERE referrer_host IS NOT NULL) h
    JOIN (SELECT h.host, r.*
          FROM (SELECT DISTINCT referrer_host AS host FROM touches
                WHERE referrer_host IS NOT NULL) h,
               range(0, len(string_split(h.host, '.'))) AS s(i)
          JOIN referrers r
            ON r.pattern = array_to_string(string_split(h.host, '.')[s.i + 1:], '.')
          WHERE NOT contains(r.pattern, '*')
          UNION ALL
          SELECT h.host, r.*
          FROM (SELECT DISTINCT referrer_host AS host FROM touches
                WHERE referrer_host IS NOT NULL) h
          JOIN (SELECT * FROM referrers WHERE contains(pattern, '*')) r
            ON regexp_full_match(h.host, r.regex)) r USING (host)
    GROUP BY h.host
),
attributed AS (
    SELECT t.session_id,
           CASE
               WHEN t.utm_source IS NOT NULL THEN lower(t.utm_source)
               WHEN t.referrer_host IS NOT NULL AND NOT t.self_referral
                   THEN coalesce(m.source, t.referrer_host)
               ELSE '(direct)'
           END AS source,
           CASE
               WHEN t.utm_source IS NOT NULL THEN coalesce(lower(t.utm_medium), '(none)')
               WHEN t.referrer_host IS NOT NULL AND NOT t.self_referral
                   THEN coalesce(m.medium, 'referral')
               ELSE '(none)'
           END AS medium,
           CASE WHEN t.utm_source IS NOT NULL THEN coalesce(t.utm_campaign, '(none)')
                ELSE '(none)' END AS campaign
    FROM touches t LEFT JOIN ref_map m ON m.host = t.referrer_host
)
SELECT
    s.session_id, s.session_start, s.session_end, s.session_date, s.duration_s, s.visitor_id,
    s.visitor_hash, visitor_key(visitor_of(s.visitor_id, s.visitor_hash, s.session_id))
        AS visitor_key,
    s.events, s.pageviews, s.entry_page, s.exit_page, s.max_scroll_depth, s.max_time_on_page,
    s.interactions, s.pageviews = 1 AND s.interactions = 0 AS is_bounce, s.converted,
    a.source, a.medium, a.campaign,
    s.exp.experiment AS experiment, s.exp.variant AS variant,
    s.browser, s.os, s.device_type, s.screen_width,
    s.geo.country AS country, s.geo.source AS country_source
FROM per_session s JOIN attributed a USING (session_id)
ORDER BY s.session_start, s.session_id
