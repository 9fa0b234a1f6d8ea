-- Runs running or suspended now, oldest first (the Overview's "running now").
SELECT r.id, j.project || '/' || j.name AS job, r.status::text AS status, r.summary, r.attempt,
       r.host, r.exit_code, r.scheduled_for, r.started_at, r.finished_at, r.slot,
       r.trigger::text AS trigger, r.target_host, r.error, r.rerun_of, r.params,
       r.yielded_to
  FROM sisyphus.runs r
  JOIN sisyphus.jobs j ON j.id = r.job_id
 WHERE r.status IN ('running', 'suspended')
 ORDER BY r.started_at NULLS LAST, r.id
 LIMIT 200
