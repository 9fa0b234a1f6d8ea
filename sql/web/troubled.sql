-- Runs that ended badly since $1 (failed, timeout, lost, missed), newest first: the Overview's
-- "needs attention". The runs made since $1 are found first, through the BRIN index on
-- `created_at` (a few block ranges: the cost is that of the last day's runs, not of the whole
-- history), and only then ordered: walking the primary key backwards instead would read every
-- run back to the first whenever fewer than 100 went wrong (EXPLAIN at 1M runs: 620 ms, "Rows
-- Removed by Filter: 999957"). MATERIALIZED keeps the planner from walking it anyway.
WITH recent AS MATERIALIZED (
    SELECT r.id, r.job_id, r.status, r.summary, r.attempt, r.host, r.exit_code, r.scheduled_for,
           r.started_at, r.finished_at, r.slot, r.trigger, r.target_host, r.error, r.rerun_of,
           r.params, r.yielded_to
      FROM sisyphus.runs r
     WHERE r.created_at >= $1::timestamptz
       AND r.status IN ('failed', 'timeout', 'lost', 'missed'))
SELECT r.id, j.project || '/' || j.name AS job, r.status::text AS status, r.summary, r.attempt,
       r.host, r.exit_code, r.scheduled_for, r.started_at, r.finished_at, r.slot,
       r.trigger::text AS trigger, r.target_host, r.error, r.rerun_of, r.params, r.yielded_to
  FROM recent r
  JOIN sisyphus.jobs j ON j.id = r.job_id
 ORDER BY r.id DESC
 LIMIT 100
