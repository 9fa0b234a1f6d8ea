-- Pauses a job; false when it was paused already. $1 project, $2 name.
SELECT sisyphus.pause_job($1, $2)
