-- Inserts one successful run of job $1/$2 that started ten minutes ago and just ended: the run
-- whose long log (insert_log_lines.sql) the dashboard's benchmark and large-data test open. Its id.
INSERT INTO sisyphus.runs (job_id, slot, scheduled_for, expires_at, status, host, started_at,
                           finished_at, exit_code, summary, trigger)
SELECT j.id, now() - interval '10 minutes', now() - interval '10 minutes', now(), 'successful',
       'h0', now() - interval '10 minutes', now(), 0, 'a long log', 'manual'
  FROM sisyphus.jobs j
 WHERE j.project = $1 AND j.name = $2
RETURNING id
