-- Pauses a job with a reason and an end (both may be NULL); false when it was paused already.
-- $1 project, $2 name, $3 reason, $4 until.
SELECT sisyphus.pause_job($1, $2, $3::text, $4::timestamptz)
