-- The parameters of runs this guardian has just claimed (those that have any), read after the
-- claim in a statement of its own (see sisyphus.claimed_params). $1 runs.
SELECT id, params FROM sisyphus.claimed_params($1)
