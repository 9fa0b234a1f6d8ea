-- Defines $2 jobs `P<p>/job<i>` in each of $1 projects P0, P1, … (jobs of one project have
-- consecutive ids), run only when asked, with unlimited concurrency and a day's TTL.
INSERT INTO sisyphus.jobs (project, name, command, concurrency, ttl)
SELECT 'P' || p, 'job' || i, '{true}', 1000000, interval '1 day'
  FROM generate_series(0, $1::bigint - 1) p, generate_series(0, $2::bigint - 1) i
 ORDER BY p, i
