-- Each job's state from the `sisyphus.job_status` view. $1: project or NULL, $2: name or NULL.
SELECT id, project, name, schedule, timezone, paused, next_due, active_runs, last_run_id,
       last_status::text AS last_status, last_finished_at, last_summary, health, healthy,
       health_reason, scheduler_error, scheduler_error_at, pause_reason, paused_by::text,
       paused_at, paused_until
  FROM sisyphus.job_status
 WHERE ($1::text IS NULL OR project = $1) AND ($2::text IS NULL OR name = $2)
 ORDER BY project, name
