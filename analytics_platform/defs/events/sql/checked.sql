-- Every record checked against the contract and cleaned (CONTRACT §3.3-3.6). Run by the events asset
-- once per chunk (CREATE ... AS for the first, INSERT for the rest).
-- reads:  {validated}: records.sql wrapped in the validation generated from the contract
--         (defs/events/validation.py); `{field}` stands for that field's value as text
--         (validation.field_text_sql); `props_text` is props as it came and
--         `props_unscrubbed` true where scrub_props could change it (duck.props_kept_sql
--         could not show otherwise), computed there once per distinct props
--         (validation.validated_sql); props_scrubbed.sql scrubs those once per batch;
--         `clean_<field>` the page and source texts as kept before their scrub
--         (clean_text.sql), computed there once per distinct text, and `texts_unscrubbed` true
--         where scrub could change one of them (duck.scrub_maybe_sql); texts_scrubbed.sql
--         scrubs those once per batch
-- writes: the temp table `checked` (a bad record keeps its reason, and its text once
--         refused_texts.sql has read it again; a good one its cleaned columns, props and texts
--         once props_scrubbed.sql and texts_scrubbed.sql have scrubbed those that need it)
-- `ts` corrects the device clock with sent_ts: the error cancels out, and an event cannot happen
-- after it arrived.
WITH typed AS (
    SELECT
        -- `line` is kept exactly where the bytes are not UTF-8, i.e. where `text` is NULL
        -- (records.sql); the validation does not carry `text` (validation.validated_sql)
        CASE WHEN line IS NOT NULL THEN 'invalid_json:utf8' ELSE reason END AS reason,
        NULL::VARCHAR AS text, line,
        {event_id} AS event_id,
        {event_type} AS event_type,
        utc({event_ts}) AS event_ts,
        utc({sent_ts}) AS sent_ts,
        utc({ingest_ts}) AS ingest_ts,
        {session_id} AS session_id,
        {visitor_id} AS visitor_id,
        {visitor_hash} AS visitor_hash,
        -- CONTRACT §2: true when the event came with the tracker's consented visitor_id; a record
        -- stored before issue 18 has no consent field, and had consent when it had a visitor_id
        coalesce(try_cast({consent} AS BOOLEAN), {visitor_id} IS NOT NULL) AS consent,
        clean_page_path, clean_page_host, clean_page_title, clean_referrer,
        clean_utm_source, clean_utm_medium, clean_utm_campaign, clean_utm_content,
        clean_utm_term, texts_unscrubbed,
        try_cast({screen_width} AS INTEGER) AS screen_width,
        try_cast({screen_height} AS INTEGER) AS screen_height,
        coalesce({user_agent}, '') AS user_agent,
        {country} AS country, {country_source} AS country_source,
        props_text AS props, props_unscrubbed,
        raw_hour, obj, raw_pos
    FROM ({validated})
)
SELECT
    t.reason, t.text, t.line,
    t.event_id,
    t.event_type,
    CASE WHEN t.sent_ts IS NOT NULL AND t.sent_ts >= t.event_ts
         THEN t.ingest_ts - (t.sent_ts - t.event_ts)
         ELSE least(t.event_ts, t.ingest_ts) END AS ts,
    t.ingest_ts,
    t.event_ts,
    t.session_id,
    -- without consent there is no visitor id: who the visitor is, for a day, is the visitor_hash
    -- (CONTRACT §3.6, duck.py's visitor_of)
    t.visitor_id,
    t.visitor_hash,
    t.consent,
    t.clean_page_path AS page_path,
    t.clean_page_host AS page_host,
    t.clean_page_title AS page_title,
    nullif(t.clean_referrer, '') AS referrer_host,
    t.clean_utm_source AS utm_source, t.clean_utm_medium AS utm_medium,
    t.clean_utm_campaign AS utm_campaign, t.clean_utm_content AS utm_content,
    t.clean_utm_term AS utm_term, t.texts_unscrubbed,
    t.screen_width, t.screen_height,
    t.user_agent,
    t.country, t.country_source,  -- CONTRACT §2: set at ingest, never from an address
    t.props, t.props_unscrubbed,
    t.raw_hour, t.obj, t.raw_pos
FROM typed t
