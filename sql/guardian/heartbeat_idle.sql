-- The beat of a guardian that supervises no run: the host's heartbeat alone (`heartbeat.sql`
-- without the leases and resource locks of its runs, which it has none of). A fleet is mostly
-- idle guardians, and this one UPDATE costs the database about half of the full statement
-- (issue 17: 200 idle guardians' beats were most of the database's idle load).
-- $1 name, $2 instance. Returns (still ours?, draining, renewed = 0), as `heartbeat.sql`.
WITH h AS (
    UPDATE sisyphus.hosts SET last_heartbeat = now()
     WHERE name = $1 AND instance = $2
    RETURNING draining)
SELECT EXISTS (SELECT 1 FROM h) AS ours, coalesce((SELECT draining FROM h), false) AS draining,
       0::bigint AS leases
