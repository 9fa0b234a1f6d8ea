-- Queues $1 manual runs of every job, due now, with distinct slots a microsecond apart and a
-- day to live (the drain benches define one job).
INSERT INTO sisyphus.runs (job_id, slot, scheduled_for, expires_at, trigger)
SELECT j.id, now() + make_interval(secs => i / 1e6), now(), now() + interval '1 day', 'manual'
  FROM sisyphus.jobs j, generate_series(1, $1) i
