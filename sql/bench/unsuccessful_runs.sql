-- Runs that ended neither successful nor uneventful (or have not ended): a drain's failures.
SELECT count(*) FROM sisyphus.runs WHERE status NOT IN ('successful', 'uneventful')
