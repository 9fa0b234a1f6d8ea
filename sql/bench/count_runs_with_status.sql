-- How many runs have status $1.
SELECT count(*) FROM sisyphus.runs WHERE status = $1::text::sisyphus.run_status
