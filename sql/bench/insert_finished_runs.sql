-- Inserts $1 successful runs, given round-robin to the `P…` jobs in id order (so every project
-- has its share spread over the whole id range), two seconds apart ending about now, on ten
-- hosts: a history for the listing benchmarks.
WITH j AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS k
             FROM sisyphus.jobs WHERE project LIKE 'P%')
INSERT INTO sisyphus.runs (job_id, slot, scheduled_for, expires_at, status, host, started_at,
                           finished_at, exit_code, trigger)
SELECT j.id, t.s, t.s, t.s + interval '1 hour', 'successful', 'h' || (i % 10), t.s,
       t.s + interval '1 second', 0, 'manual'
  FROM generate_series(0, $1::bigint - 1) i
  JOIN j ON j.k = i % (SELECT count(*) FROM sisyphus.jobs WHERE project LIKE 'P%')
  CROSS JOIN LATERAL (SELECT now() - make_interval(secs => 2.0 * ($1::bigint - i))) t(s)
 ORDER BY i
