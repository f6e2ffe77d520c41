-- attribution_touch: each converting visitor is credited once: first touch = the source of their
-- first session ever; last touch = the source of the session in which they first converted.
-- Consented visitors only (visitor_id): without consent there is no first session ever to see.
-- reads:  s (every session)
-- writes: attribution_touch/all/part.parquet
WITH per_visitor AS (
    SELECT visitor_id,
           first({'source': source, 'medium': medium, 'campaign': campaign}
                 ORDER BY session_start, session_id) AS first_touch,
           first({'source': source, 'medium': medium, 'campaign': campaign}
                 ORDER BY session_start, session_id) FILTER (converted) AS last_touch
    FROM s WHERE visitor_id IS NOT NULL
    GROUP BY visitor_id
    HAVING bool_or(converted)
),
credits AS (
    SELECT first_touch.source, first_touch.medium, first_touch.campaign, 1 AS f, 0 AS l
    FROM per_visitor
    UNION ALL
    SELECT last_touch.source, last_touch.medium, last_touch.campaign, 0, 1 FROM per_visitor
)
SELECT source, medium, campaign,
       sum(f)::BIGINT AS first_touch_conversions,
       sum(l)::BIGINT AS last_touch_conversions
FROM credits
GROUP BY ALL
ORDER BY last_touch_conversions DESC, first_touch_conversions DESC, source, medium, campaign
