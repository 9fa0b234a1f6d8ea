-- Takes back a job's runs materialised ahead of time. $1 job id.
-- Returns the earliest slot taken back.
SELECT sisyphus.take_back_future_runs($1)
