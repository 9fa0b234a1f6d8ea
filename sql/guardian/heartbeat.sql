-- One round trip per beat: the host's heartbeat and the leases of the runs this guardian
-- supervises (only those: a run marked ours that we do not supervise must lose its lease),
-- and those runs' resource locks.
-- $1 name, $2 instance, $3 lease, $4 supervised run ids. Returns (still ours?, draining, renewed).
WITH h AS (
    UPDATE sisyphus.hosts SET last_heartbeat = now()
     WHERE name = $1 AND instance = $2
    RETURNING draining),
-- The runs are locked in ascending id order, as finish_many ends them: a small table is read
-- by a sequential scan, in the order of its tuples, and two statements that lock the same rows
-- in different orders deadlock (PostgreSQL then cancels one, and a cancelled beat fences).
-- `NO KEY UPDATE`, the lock an UPDATE of these columns takes: it lets the foreign keys of log
-- lines and written resources (KEY SHARE) through.
o AS (
    SELECT id FROM sisyphus.runs
     WHERE host = $1 AND id = ANY ($4) AND status IN ('running', 'suspended')
       AND EXISTS (SELECT 1 FROM h)
     ORDER BY id
       FOR NO KEY UPDATE),
l AS (
    UPDATE sisyphus.runs r SET lease_expires_at = now() + $3::interval
      FROM o
     WHERE r.id = o.id
    RETURNING r.id),
-- The resource locks of those runs (migrations/0004) are refreshed on the same beat.
-- Holder rows only: never a lock row or a name, so a beat cannot close a deadlock cycle.
k AS (
    UPDATE sisyphus.resource_holders rh SET lease_until = now() + rh.lease
     WHERE rh.run_id = ANY ($4) AND rh.lease_until IS NOT NULL AND EXISTS (SELECT 1 FROM h))
SELECT EXISTS (SELECT 1 FROM h) AS ours, coalesce((SELECT draining FROM h), false) AS draining,
       (SELECT count(*) FROM l) AS leases
