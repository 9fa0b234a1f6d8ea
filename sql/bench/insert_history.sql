-- Inserts $1 ended runs, given round-robin to the `P…` jobs in id order (every project has its
-- share spread over the whole id range), two seconds apart ending about now, each made
-- (`created_at`) when it was due, as the scheduler makes them, on ten hosts; one in $2 failed
-- (exit 1, with an error; $2 prime to the number of jobs spreads the failures over them), the
-- others successful with a summary: a fleet's history for the dashboard's benchmark and its
-- large-data browser test.
WITH j AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS k
             FROM sisyphus.jobs WHERE project LIKE 'P%')
INSERT INTO sisyphus.runs (job_id, slot, scheduled_for, expires_at, created_at, status, host,
                           started_at, finished_at, exit_code, error, summary, trigger)
SELECT j.id, t.s, t.s, t.s + interval '1 hour', t.s,
       CASE WHEN t.failed THEN 'failed' ELSE 'successful' END::sisyphus.run_status,
       'h' || (i % 10), t.s + interval '20 milliseconds',
       t.s + make_interval(secs => 1 + i % 7),
       CASE WHEN t.failed THEN 1 ELSE 0 END,
       CASE WHEN t.failed THEN 'exit code 1: connection refused by upstream' END,
       CASE WHEN NOT t.failed THEN 'processed ' || (i % 5000) || ' records' END,
       'manual'
  FROM generate_series(0, $1::bigint - 1) i
  JOIN j ON j.k = i % (SELECT count(*) FROM sisyphus.jobs WHERE project LIKE 'P%')
  CROSS JOIN LATERAL (SELECT now() - make_interval(secs => 2.0 * ($1::bigint - i)),
                             i % $2::bigint = $2::bigint - 1) t(s, failed)
 ORDER BY i
