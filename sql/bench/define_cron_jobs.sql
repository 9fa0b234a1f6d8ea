-- Defines $1 jobs `Bench/job<i>` running every minute, none due for ten years (the scheduler
-- bench makes some due before each tick).
INSERT INTO sisyphus.jobs (project, name, command, cron, next_slot)
SELECT 'Bench', 'job' || i, '{true}', '{* * * * *}', now() + interval '10 years'
  FROM generate_series(1, $1) i
