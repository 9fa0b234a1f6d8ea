-- The runs of one slot (its attempts and reruns, every host of an `all` job): $1 a run of it.
SELECT r.id, j.project || '/' || j.name AS job, r.status::text AS status, r.summary, r.attempt,
       r.host, r.exit_code, r.scheduled_for, r.started_at, r.finished_at, r.slot,
       r.trigger::text AS trigger, r.target_host, r.error, r.rerun_of, r.params,
       r.yielded_to
  FROM sisyphus.runs one
  JOIN sisyphus.runs r ON r.job_id = one.job_id AND r.slot = one.slot
  JOIN sisyphus.jobs j ON j.id = r.job_id
 WHERE one.id = $1
 ORDER BY r.attempt, r.id
