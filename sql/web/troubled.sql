-- Runs that ended badly since $1 (failed, timeout, lost, missed), newest first: the Overview's
-- "needs attention". Read from the newest runs backwards by id, so the cost is that of the
-- runs since $1, not of the whole history.
SELECT r.id, j.project || '/' || j.name AS job, r.status::text AS status, r.summary, r.attempt,
       r.host, r.exit_code, r.scheduled_for, r.started_at, r.finished_at, r.slot,
       r.trigger::text AS trigger, r.target_host, r.error, r.rerun_of, r.params
  FROM sisyphus.runs r
  JOIN sisyphus.jobs j ON j.id = r.job_id
 WHERE r.created_at >= $1::timestamptz
   AND r.status IN ('failed', 'timeout', 'lost', 'missed')
 ORDER BY r.id DESC
 LIMIT 100
