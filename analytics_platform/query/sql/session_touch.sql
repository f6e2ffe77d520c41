-- What a session was attributed from (CONTRACT §4, "Attribution"): its touch, the first page
-- view, or its first event when it has none ("first" by ts, then event_id). The API's
-- visit:referrer and visit:utm_* dimensions read the touch's raw values from here. One arg_min
-- of a struct (never NULL): arg_min of a column skips the rows where that column is NULL.
-- reads:  session_events ($start, $end: session dates, inclusive)
SELECT session_id, t.referrer_host AS touch_referrer, t.utm_source AS touch_utm_source,
       t.utm_medium AS touch_utm_medium, t.utm_campaign AS touch_utm_campaign,
       t.utm_content AS touch_utm_content, t.utm_term AS touch_utm_term
FROM (
    SELECT session_id,
           arg_min({'referrer_host': referrer_host, 'utm_source': utm_source,
                    'utm_medium': utm_medium, 'utm_campaign': utm_campaign,
                    'utm_content': utm_content, 'utm_term': utm_term},
                   (event_type <> 'page_view', ts, event_id)) AS t
    FROM session_events WHERE session_date BETWEEN $start AND $end
    GROUP BY session_id
)
