-- Registers this guardian under its host name, unless another live guardian holds the name.
-- $1 name, $2 pools, $3 capacity, $4 pid, $5 version, $6 instance, $7 lease (liveness window),
-- $8 isolation ('cgroup' or 'process-group').
-- Returns the row only if the name was free, ours, or its holder stopped beating.
INSERT INTO sisyphus.hosts AS h (name, pools, capacity, pid, version, instance, started_at, last_heartbeat, draining, isolation)
VALUES ($1, $2, $3, $4, $5, $6, now(), now(), false, $8)
ON CONFLICT (name) DO UPDATE
   SET pools = EXCLUDED.pools, capacity = EXCLUDED.capacity, pid = EXCLUDED.pid,
       version = EXCLUDED.version, instance = EXCLUDED.instance, started_at = now(),
       last_heartbeat = now(), isolation = EXCLUDED.isolation
 WHERE h.instance IS NULL OR h.instance = EXCLUDED.instance OR h.last_heartbeat < now() - $7::interval
RETURNING draining
