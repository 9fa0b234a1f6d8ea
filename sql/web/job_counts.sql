-- Of job $1's last 100 ended runs: how many, and how many succeeded (successful, uneventful).
SELECT count(*) AS ended, count(*) FILTER (WHERE status IN ('successful', 'uneventful')) AS good
  FROM (SELECT status FROM sisyphus.runs
         WHERE job_id = $1 AND finished_at IS NOT NULL AND status NOT IN ('cancelled', 'skipped')
         ORDER BY id DESC LIMIT 100) r
