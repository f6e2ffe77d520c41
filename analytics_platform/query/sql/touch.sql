-- The Sources view's first touch vs last touch (all history).
-- reads:  attribution_touch
SELECT source, medium, campaign, first_touch_conversions, last_touch_conversions
FROM attribution_touch ORDER BY last_touch_conversions DESC, first_touch_conversions DESC
