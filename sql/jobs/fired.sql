-- How many slots a job has materialised so far (for `iterations`). $1 job id.
SELECT fired FROM sisyphus.jobs WHERE id = $1
