-- Wakes the guardians: pending runs were created (delivered when the tick commits).
SELECT pg_notify('sisyphus_runs', '')
