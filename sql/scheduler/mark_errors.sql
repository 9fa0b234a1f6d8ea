-- Marks jobs with the error that stopped the scheduler from planning or finishing their runs
-- (migrations/0008_isolation.sql); returns how many were not marked before (those notify).
-- $1 job ids, $2 errors.
SELECT count(*) FILTER (WHERE sisyphus.mark_scheduler_error(t.id, t.error))
  FROM unnest($1::bigint[], $2::text[]) AS t(id, error)
