-- One attempt at run $1's locks: its job's templates at its slot, plus inputs $2 and
-- outputs $3 added while it runs.
SELECT granted, waitable, reason FROM sisyphus.lock_run_resources($1, $2, $3)
