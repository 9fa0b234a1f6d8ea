-- Takes back a job's backfill slots that are not runs yet. $1 project, $2 name. Returns how many.
SELECT sisyphus.cancel_backfill($1, $2)
