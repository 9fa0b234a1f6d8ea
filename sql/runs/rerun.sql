-- A new run of the same job, slot and target host as run $1, linked to it; returns its id.
SELECT sisyphus.rerun($1)
