-- A job's last $3 run durations in seconds (start to finish), newest first. $1 project, $2 name.
SELECT extract(epoch FROM r.finished_at - r.started_at)::float8
  FROM sisyphus.runs r
  JOIN sisyphus.jobs j ON j.id = r.job_id
 WHERE j.project = $1 AND j.name = $2
   AND r.started_at IS NOT NULL AND r.finished_at IS NOT NULL
 ORDER BY r.id DESC
 LIMIT $3
