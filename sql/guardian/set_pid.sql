-- The run's process started. $1 run, $2 pid.
UPDATE sisyphus.runs SET pid = $2 WHERE id = $1
