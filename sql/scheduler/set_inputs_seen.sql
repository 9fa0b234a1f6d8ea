-- Moves a data-triggered job's watermark on. $1: job, $2: newest write looked at.
UPDATE sisyphus.jobs SET inputs_seen_at = $2 WHERE id = $1
