-- Health of one job ($1 project, $2 name) or of every job ($1 NULL), by name, with the note of a
-- paused job (reason, who, since, until; NULL when not paused).
SELECT j.project, j.name, sisyphus.health_reason(j.id) AS reason, j.paused,
       j.pause_reason, j.paused_by::text AS paused_by, j.paused_at, j.paused_until
  FROM sisyphus.jobs j
 WHERE $1::text IS NULL OR (j.project = $1 AND j.name = $2)
 ORDER BY j.project, j.name
