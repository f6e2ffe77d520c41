-- journeys_daily_consistent (check): every row is a path of 2 to 5 pages starting at its
-- entry_page, with visitors ≤ sessions; every published path's prefix is published with at
-- least as many sessions and visitors (so a hidden path is never implied by its extensions);
-- and the two-page paths hold no more sessions than the day has sessions with two page views or
-- more. The rows that break it (none: passed).
-- reads:  m (the day's journeys_daily partition, just written), s (the day's sessions)
-- writes: nothing (the rows that break the check)
SELECT 'bad row' AS problem, path, sessions FROM m
WHERE steps NOT BETWEEN 2 AND 5 OR len(path) <> steps OR path[1] <> entry_page
   OR visitors > sessions OR sessions < 1
UNION ALL
SELECT 'prefix missing or smaller', c.path, c.sessions FROM m c
LEFT JOIN m p ON p.path = c.path[1:c.steps - 1]
WHERE c.steps > 2 AND (p.path IS NULL OR p.sessions < c.sessions OR p.visitors < c.visitors)
UNION ALL
SELECT 'more two-page paths than sessions with two page views', NULL, sum(sessions) FROM m
WHERE steps = 2
HAVING sum(sessions) > (SELECT count(*) FROM s WHERE pageviews >= 2)
