-- The Experiments view: every variant of every experiment (all history).
-- reads:  experiments
SELECT * FROM experiments ORDER BY experiment, variant
