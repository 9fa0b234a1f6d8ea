-- Runs a job now, outside its schedule (one run per live host for an `all` job), with parameters
-- (a JSON object of text values; the job's defaults for the rest). $1 project, $2 name, $3 params.
-- Who asked: the person, also through the dashboard (`sisyphus.person()`).
SELECT sisyphus.run_now($1, $2, params => $3::jsonb, p_by => sisyphus.person())
