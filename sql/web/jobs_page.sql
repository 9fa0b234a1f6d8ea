-- One page of the Jobs screen, by project and name after ($7, $8) (NULLs: from the start).
-- Filters, each NULL for any: $1 project, $2 text in PROJECT/NAME (case-insensitive), $3 last
-- run's status, $4 pool, $5 paused, $6 healthy; $9 the page size. With each job, when its
-- newest good run ended (read backwards through `runs_by_job` until one is found).
--
-- The columns are `sisyphus.job_status`'s (0013) and its health reason
-- `sisyphus.health_reason` (0008), written out here rather than read through the view: the view
-- calls that function once per job, and each call plans and runs its two reads of `runs` anew —
-- under row-level security each of those builds the set of the person's visible jobs again (a
-- scan of every job), so 50 jobs cost 1.5 s for an admin and 15 s for a viewer at 10,000 jobs
-- and 1M runs, and the unhealthy filter of the Overview (every job) two minutes. Inline, the
-- set is built once per statement. The newest good run is read only where it is needed (a job
-- with max_health_age, and the rows shown), not for every job the unhealthy filter looks at.
-- Keep the health rules the same as health_reason's.
SELECT j.id, j.project, j.name,
       CASE WHEN j.cron IS NOT NULL THEN array_to_string(j.cron, ' | ')
            WHEN j.every IS NOT NULL THEN 'every ' || j.every::text
            WHEN j.at IS NOT NULL THEN 'at ' || j.at::text
            ELSE 'manual' END AS schedule,
       j.timezone, j.paused, j.next_slot AS next_due,
       (SELECT count(*) FROM sisyphus.runs a
         WHERE a.job_id = j.id AND a.status IN ('running', 'suspended')) AS active_runs,
       last.id AS last_run_id, last.status::text AS last_status,
       last.finished_at AS last_finished_at, last.summary AS last_summary,
       CASE WHEN j.paused THEN 'paused'
            WHEN j.scheduler_error IS NOT NULL THEN 'scheduler-error'
            WHEN last.id IS NULL THEN 'never-run'
            WHEN last.status IN ('successful', 'uneventful') THEN 'ok'
            WHEN last.status = 'missed' THEN 'missed'
            ELSE 'failing' END AS health,
       reason.text IS NULL AS healthy, reason.text AS health_reason,
       j.scheduler_error, j.scheduler_error_at, j.pause_reason, j.paused_by::text,
       j.paused_at, j.paused_until,
       (SELECT r.finished_at FROM sisyphus.runs r
         WHERE r.job_id = j.id AND r.status IN ('successful', 'uneventful')
         ORDER BY r.id DESC LIMIT 1) AS last_success
  FROM sisyphus.jobs j
  LEFT JOIN LATERAL (
        SELECT r.id, r.status, r.finished_at, r.summary, coalesce(r.error, r.summary, '') AS text
          FROM sisyphus.runs r
         WHERE r.job_id = j.id AND r.status NOT IN ('pending', 'running', 'suspended', 'cancelled', 'skipped')
         ORDER BY r.id DESC
         LIMIT 1) last ON true
  CROSS JOIN LATERAL (
        SELECT CASE
            WHEN j.scheduler_error IS NOT NULL THEN
                format('scheduler error: %s', j.scheduler_error)
            WHEN last.status IS NULL THEN 'never run'
            WHEN last.status NOT IN ('successful', 'uneventful') THEN
                format('last run %s at %s: %s', last.status,
                       to_char(last.finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS"Z"'),
                       last.text)
            WHEN j.max_health_age IS NOT NULL
                 AND now() - (SELECT r.finished_at FROM sisyphus.runs r
                               WHERE r.job_id = j.id AND r.status IN ('successful', 'uneventful')
                               ORDER BY r.id DESC LIMIT 1) > j.max_health_age THEN
                format('last good run ended %s ago, more than max_health_age %s',
                       date_trunc('second', now() - (SELECT r.finished_at FROM sisyphus.runs r
                                                      WHERE r.job_id = j.id
                                                        AND r.status IN ('successful', 'uneventful')
                                                      ORDER BY r.id DESC LIMIT 1)),
                       j.max_health_age)
            END AS text) reason
 WHERE ($1::text IS NULL OR j.project = $1)
   AND ($2::text IS NULL OR strpos(lower(j.project || '/' || j.name), lower($2)) > 0)
   AND ($3::text IS NULL OR last.status = $3::sisyphus.run_status)
   AND ($4::text IS NULL OR j.target_pool = $4)
   AND ($5::boolean IS NULL OR j.paused = $5)
   AND ($6::boolean IS NULL OR (reason.text IS NULL) = $6)
   AND ($7::text IS NULL OR (j.project, j.name) > ($7, $8::text))
 ORDER BY j.project, j.name
 LIMIT $9
