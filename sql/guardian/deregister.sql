-- A guardian stopping cleanly gives its name back: a new guardian may take it at once.
-- $1 name, $2 instance.
UPDATE sisyphus.hosts SET instance = NULL, last_heartbeat = now() - interval '1 day'
 WHERE name = $1 AND instance = $2
