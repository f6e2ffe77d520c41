-- The props that checked.sql left as they came (`props_unscrubbed`: duck.props_kept_sql could not
-- show that scrub_props would write them again the same) scrubbed by the macro, once per distinct
-- text, once per batch after its last chunk, and only when a batch has any (most hold none). The
-- macro in checked.sql cost every chunk 0.10-0.14 CPU-s to bind, optimise and compile (its
-- expansion holds three scrubs and their regular expressions, compiled again by every
-- statement, a prepared one too), whether or not a record needed it: the 30-day backfill's
-- events step runs 201 chunks (8 MB of objects each, on its two workers) and quarantines nothing.
-- reads:  checked
-- writes: checked.props (and props_unscrubbed) of those records
UPDATE checked SET props = s.scrubbed, props_unscrubbed = false
FROM (SELECT p, scrub_props(p) AS scrubbed
      FROM (SELECT DISTINCT props AS p FROM checked WHERE props_unscrubbed)) s
WHERE checked.props_unscrubbed AND checked.props = s.p
