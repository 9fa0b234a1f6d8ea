-- Makes every ($2 / $3)th of the jobs with ids up to $2 due at $1: $3 due jobs spread over the
-- id range of $2 defined ones. $2 and $3 are bigints.
UPDATE sisyphus.jobs SET next_slot = $1 WHERE id % ($2::bigint / $3::bigint) = 0 AND id <= $2
