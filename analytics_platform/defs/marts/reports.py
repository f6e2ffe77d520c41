"""Issue 19's daily marts beyond devices, goals and journeys (CONTRACT §5): countries (without
the IP address), outbound links, downloads, 404 pages, web vitals and engaged time.

Each is one ``daily_mart(...)`` (assets.py) over the day's ``sessions`` and ``session_events``,
its statement and checks in ``sql/<name>.sql`` beside this file; the tracker's events they
count are CONTRACT §1's (``outbound``, ``download``, ``not_found``, ``web_vitals``,
``engagement``) and the country is set at ingest (CONTRACT §2).
"""

from analytics_platform.defs.marts.assets import MartCheck, daily_mart

EVENTS = ["sessions", "session_events"]

countries_daily = daily_mart(
    "countries_daily", "Per day, country and how it is known (`cloudfront`: the CDN's viewer "
    "country; `time_zone`: the browser's time zone, approximate): visitors, sessions, pageviews, "
    "bounces and conversions. Country only, never a region or city, and never from the IP "
    "address.", ["sessions"],
    checks=[MartCheck("countries_daily_reconcile", "The rows add up to the day's sessions, "
                      "pageviews, bounces and conversions (from sessions).")])
outbound_daily = daily_mart(
    "outbound_daily", "Per day and host of a link to another site: clicks, sessions and "
    "visitors (the host only, never the link's path or query).", EVENTS,
    checks=[MartCheck("outbound_daily_reconcile", "The clicks add up to the day's `outbound` "
                      "events; visitors ≤ sessions ≤ clicks on every row.")])
downloads_daily = daily_mart(
    "downloads_daily", "Per day, file extension and file: downloads, sessions and visitors.",
    EVENTS,
    checks=[MartCheck("downloads_daily_reconcile", "The downloads add up to the day's "
                      "`download` events; visitors ≤ sessions ≤ downloads on every row.")])
not_found_daily = daily_mart(
    "not_found_daily", "Per day, page the site marked as not found (404) and the page or site "
    "that linked to it: hits, sessions and visitors.", EVENTS,
    checks=[MartCheck("not_found_daily_reconcile", "The hits add up to the day's `not_found` "
                      "events; visitors ≤ sessions ≤ hits on every row.")])
web_vitals_daily = daily_mart(
    "web_vitals_daily", "Per day and page: the 75th percentile of LCP, INP, CLS and TTFB as "
    "visitors' browsers measured them, and the share of measurements web.dev calls good (LCP ≤ "
    "2500 ms, INP ≤ 200 ms, CLS ≤ 0.1, TTFB ≤ 800 ms).", EVENTS,
    checks=[MartCheck("web_vitals_daily_bounds", "The samples add up to the day's `web_vitals` "
                      "events; per metric, samples ≤ the row's, and a p75 ≥ 0 and a good share "
                      "in [0, 1] exactly when it has samples.")])
engagement_daily = daily_mart(
    "engagement_daily", "Per day and page: engaged time (seconds the page was visible), "
    "summed per session, with its total, mean and median over the sessions.", EVENTS,
    checks=[MartCheck("engagement_daily_reconcile", "The engaged seconds add up to the day's "
                      "`engagement` events'; visitors ≤ sessions and 0 ≤ median ≤ total on "
                      "every row.")])
