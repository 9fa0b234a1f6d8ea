-- One round trip per beat: the host's heartbeat and the leases of all its active runs.
-- $1 name, $2 instance, $3 lease. Returns (still ours?, draining).
WITH h AS (
    UPDATE sisyphus.hosts SET last_heartbeat = now()
     WHERE name = $1 AND instance = $2
    RETURNING draining),
l AS (
    UPDATE sisyphus.runs SET lease_expires_at = now() + $3::interval
     WHERE host = $1 AND status IN ('running', 'suspended') AND EXISTS (SELECT 1 FROM h)
    RETURNING id)
SELECT EXISTS (SELECT 1 FROM h) AS ours, coalesce((SELECT draining FROM h), false) AS draining,
       (SELECT count(*) FROM l) AS leases
