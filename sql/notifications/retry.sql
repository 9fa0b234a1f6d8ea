-- Sends failed notifications again from scratch: $1 ids. Returns the ids taken back (those the
-- caller operates; migrations/0011 checks and audits).
SELECT sisyphus.retry_notifications($1)
