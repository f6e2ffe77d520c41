-- The dashboard's filter choices: every source, medium, campaign, device type and browser, and
-- the 200 most viewed pages. A page outside them (a shared link's, or typed in the page box) is
-- looked up on its own, only then (dashboard/frame.py's page_viewed), so this query stays one
-- cheap query per page view.
-- Every list is coalesced to []: list() of no row is NULL, not an empty list, and a small site
-- can have sessions without any page view (custom events only), device type or browser.
-- reads:  sessions, pages_daily
SELECT coalesce((SELECT list(DISTINCT source ORDER BY source) FROM sessions), [])
           AS sources,
       coalesce((SELECT list(DISTINCT medium ORDER BY medium) FROM sessions), []) AS mediums,
       coalesce((SELECT list(DISTINCT campaign ORDER BY campaign) FROM sessions), [])
           AS campaigns,
       coalesce((SELECT list(DISTINCT device_type ORDER BY device_type) FROM sessions
                 WHERE device_type IS NOT NULL), []) AS devices,
       coalesce((SELECT list(DISTINCT browser ORDER BY browser) FROM sessions
                 WHERE browser IS NOT NULL), []) AS browsers,
       -- the 200 most viewed pages, from the daily page mart (not every event)
       coalesce((SELECT list(page_path ORDER BY n DESC, page_path) FROM (
            SELECT page_path, sum(pageviews) AS n FROM pages_daily
            GROUP BY 1 ORDER BY n DESC, page_path LIMIT 200)), []) AS pages
