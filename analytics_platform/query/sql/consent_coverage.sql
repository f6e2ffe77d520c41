-- Consent coverage over all history: the share of sessions with a consented visitor id, which is
-- what cohorts, retention and first-touch attribution can count (CONTRACT §4–5).
-- reads:  kpis_daily
SELECT coalesce(sum(consented_sessions), 0)::BIGINT AS consented_sessions,
       coalesce(sum(sessions), 0)::BIGINT AS sessions
FROM kpis_daily
