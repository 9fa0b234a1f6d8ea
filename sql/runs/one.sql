-- One run by id. $1: run id.
SELECT r.id, j.project || '/' || j.name AS job, r.status::text AS status, r.summary, r.attempt,
       r.host, r.exit_code, r.scheduled_for, r.started_at, r.finished_at, r.slot,
       r.trigger::text AS trigger, r.target_host, r.error, r.rerun_of, r.params,
       r.yielded_to
  FROM sisyphus.runs r
  JOIN sisyphus.jobs j ON j.id = r.job_id
 WHERE r.id = $1
