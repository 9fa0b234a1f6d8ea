-- One page of the Jobs screen, by project and name after ($7, $8) (NULLs: from the start).
-- Filters, each NULL for any: $1 project, $2 text in PROJECT/NAME (case-insensitive), $3 last
-- run's status, $4 pool, $5 paused, $6 healthy; $9 the page size. With each job, when its
-- newest good run ended (read backwards through `runs_by_job` until one is found).
SELECT s.id, s.project, s.name, s.schedule, s.timezone, s.paused, s.next_due, s.active_runs,
       s.last_run_id, s.last_status::text AS last_status, s.last_finished_at, s.last_summary,
       s.health, s.healthy, s.health_reason, s.scheduler_error, s.scheduler_error_at,
       s.pause_reason, s.paused_by::text, s.paused_at, s.paused_until,
       (SELECT r.finished_at FROM sisyphus.runs r
         WHERE r.job_id = s.id AND r.status IN ('successful', 'uneventful')
         ORDER BY r.id DESC LIMIT 1) AS last_success
  FROM sisyphus.job_status s
  JOIN sisyphus.jobs j ON j.id = s.id
 WHERE ($1::text IS NULL OR s.project = $1)
   AND ($2::text IS NULL OR strpos(lower(s.project || '/' || s.name), lower($2)) > 0)
   AND ($3::text IS NULL OR s.last_status = $3::sisyphus.run_status)
   AND ($4::text IS NULL OR j.target_pool = $4)
   AND ($5::boolean IS NULL OR s.paused = $5)
   AND ($6::boolean IS NULL OR s.healthy = $6)
   AND ($7::text IS NULL OR (s.project, s.name) > ($7, $8::text))
 ORDER BY s.project, s.name
 LIMIT $9
