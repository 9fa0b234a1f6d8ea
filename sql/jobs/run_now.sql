-- Runs a job now, outside its schedule (one run per live host for an `all` job). $1 project, $2 name.
SELECT sisyphus.run_now($1, $2)
