-- Materialises waiting backfill slots (migrations/0016_overlap_backfill.sql) as runs with
-- trigger `backfill`, oldest first, per unpaused job only as many as it has room for: its
-- concurrency less its running, suspended and due pending runs. So a backfill never fills the
-- guardians' window of due runs, and each run waits at most its TTL, counted from now. A slot
-- taken is deleted from the queue; one that meanwhile got a good run or one in progress makes no
-- run. A run is the slot's next attempt (one-run-per-slot holds beside the slot's earlier runs);
-- it takes the parameters' defaults at its slot, and `created_by` names who asked.
-- $1 now, $2 one job or NULL (every job with waiting slots). Returns the new runs' jobs.
WITH waiting AS (
    SELECT DISTINCT q.job_id FROM sisyphus.backfill_queue q
     WHERE $2::bigint IS NULL OR q.job_id = $2),
room AS (
    SELECT j.id AS job_id,
           j.concurrency - (SELECT count(*) FROM sisyphus.runs r
                             WHERE r.job_id = j.id
                               AND (r.status IN ('running', 'suspended')
                                    OR (r.status = 'pending' AND r.scheduled_for <= $1))) AS n
      FROM sisyphus.jobs j
      JOIN waiting w ON w.job_id = j.id
     WHERE NOT j.paused),
next AS (
    SELECT q.job_id, q.slot, q.target_host
      FROM room
     CROSS JOIN LATERAL (SELECT b.job_id, b.slot, b.target_host
                           FROM sisyphus.backfill_queue b
                          WHERE b.job_id = room.job_id
                          ORDER BY b.slot, b.target_host
                          LIMIT greatest(room.n, 0)) q),
taken AS (
    DELETE FROM sisyphus.backfill_queue q
     USING next
     WHERE q.job_id = next.job_id AND q.slot = next.slot AND q.target_host = next.target_host
    RETURNING q.job_id, q.slot, q.target_host, q.requested_by)
INSERT INTO sisyphus.runs (job_id, slot, attempt, target_host, trigger, scheduled_for,
                           expires_at, created_by, params)
SELECT t.job_id, t.slot,
       coalesce((SELECT max(x.attempt) FROM sisyphus.runs x
                  WHERE x.job_id = t.job_id AND x.slot = t.slot
                    AND coalesce(x.target_host, '') = t.target_host), 0) + 1,
       nullif(t.target_host, ''), 'backfill', $1::timestamptz, $1::timestamptz + j.ttl,
       'backfill by ' || t.requested_by,
       CASE WHEN j.params <> '{}' THEN sisyphus.run_params(j.params, NULL, t.slot, j.timezone) END
  FROM taken t
  JOIN sisyphus.jobs j ON j.id = t.job_id
 WHERE NOT EXISTS (SELECT 1 FROM sisyphus.runs d
                    WHERE d.job_id = t.job_id AND d.slot = t.slot
                      AND coalesce(d.target_host, '') = t.target_host
                      AND d.status IN ('successful', 'uneventful', 'pending', 'running', 'suspended'))
 -- Ids in slot order: the claim takes runs due at the same time by id, so oldest first.
 ORDER BY t.slot, t.target_host
ON CONFLICT DO NOTHING
RETURNING job_id
