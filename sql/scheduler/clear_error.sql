-- A marked job whose runs were handled without error loses its mark. $1: job.
UPDATE sisyphus.jobs SET scheduler_error = NULL, scheduler_error_at = NULL WHERE id = $1
