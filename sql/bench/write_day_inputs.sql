-- Writes the inputs of day $1 for the $2 active data-triggered jobs
-- (`active.<k>.events.<YYYY-MM-DD>`).
INSERT INTO sisyphus.resources (name, written_at, writer)
SELECT 'active.' || k || '.events.' || to_char($1 AT TIME ZONE 'UTC', 'YYYY-MM-DD'),
       clock_timestamp(), 'bench'
  FROM generate_series(1, $2) k
