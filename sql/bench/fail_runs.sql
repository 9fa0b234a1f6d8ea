-- Ends runs $1 as failed, now (their outbox rows are written by the outcome trigger).
UPDATE sisyphus.runs SET status = 'failed', finished_at = now() WHERE id = ANY($1)
