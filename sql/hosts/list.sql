-- Registered guardians with their pools, heartbeat age and active runs.
SELECT h.name, h.pools, h.capacity, h.draining, h.pid, h.version, h.started_at, h.last_heartbeat, h.isolation,
       extract(epoch FROM now() - h.last_heartbeat)::float8 AS heartbeat_age,
       h.last_heartbeat > now() - interval '30 seconds' AS live,
       (SELECT count(*) FROM sisyphus.runs r
         WHERE r.host = h.name AND r.status IN ('running', 'suspended')) AS running
  FROM sisyphus.hosts h
 ORDER BY h.name
