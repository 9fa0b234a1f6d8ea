-- Runs, newest first. $1: project or NULL, $2: job name or NULL, $3: status or NULL, $4: limit,
-- $5: scheduled at or after, or NULL.
SELECT r.id, j.project || '/' || j.name AS job, r.status::text AS status, r.summary, r.attempt,
       r.host, r.exit_code, r.scheduled_for, r.started_at, r.finished_at, r.slot,
       r.trigger::text AS trigger, r.target_host, r.error, r.rerun_of, r.params,
       r.yielded_to
  FROM sisyphus.runs r
  JOIN sisyphus.jobs j ON j.id = r.job_id
 WHERE ($1::text IS NULL OR j.project = $1)
   AND ($2::text IS NULL OR j.name = $2)
   AND ($3::text IS NULL OR r.status = $3::sisyphus.run_status)
   AND ($5::timestamptz IS NULL OR r.scheduled_for >= $5)
 ORDER BY r.id DESC
 LIMIT $4
