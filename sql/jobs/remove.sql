-- Removes a job and its history (refused while a run of it is active). $1 project, $2 name.
-- Returns the number of runs removed with it.
SELECT sisyphus.remove_job($1, $2)
