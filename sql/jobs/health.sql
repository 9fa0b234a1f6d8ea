-- Health of one job ($1 project, $2 name) or of every job ($1 NULL), by name.
SELECT j.project, j.name, sisyphus.health_reason(j.id) AS reason
  FROM sisyphus.jobs j
 WHERE $1::text IS NULL OR (j.project = $1 AND j.name = $2)
 ORDER BY j.project, j.name
