-- The newest successful or uneventful run of job $1: when it finished.
SELECT max(r.finished_at) AS at
  FROM (SELECT finished_at FROM sisyphus.runs
         WHERE job_id = $1 AND status IN ('successful', 'uneventful')
         ORDER BY id DESC LIMIT 1) r
