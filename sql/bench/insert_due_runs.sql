-- Queues $2 manual runs of job Bench/$1 due in $3 milliseconds, with distinct slots a
-- microsecond apart and a day to live; returns their ids.
INSERT INTO sisyphus.runs (job_id, slot, scheduled_for, expires_at, trigger)
SELECT j.id, clock_timestamp() + make_interval(secs => i / 1e6),
       now() + make_interval(secs => $3 / 1e3), now() + interval '1 day', 'manual'
  FROM sisyphus.jobs j, generate_series(1, $2) i
 WHERE j.project = 'Bench' AND j.name = $1
RETURNING id
