-- The Web vitals view: per page, p75 and the share of good samples of LCP, INP, CLS and TTFB
-- (CONTRACT §5 web_vitals_daily). A p75 does not add up over days, so {rows} is the mart only
-- for one day without filters; otherwise it is the mart's own SQL over the range's (filtered)
-- events counted as one period (dashboard/queries.py `report`).
-- reads:  web_vitals_daily ($start = $end: one session date)
SELECT page_path, samples, lcp_samples, inp_samples, cls_samples, ttfb_samples,
       lcp_p75, inp_p75, cls_p75, ttfb_p75, lcp_good, inp_good, cls_good, ttfb_good
FROM {rows}
WHERE date BETWEEN $start AND $end
ORDER BY samples DESC, page_path
