-- The leader's housekeeping, about once a minute: daily log partitions from yesterday to three
-- days ahead (UTC), then retention. $1 keep logs, $2 keep runs (and settled notifications),
-- $3 most runs (and most notifications, most audit rows) deleted at once, $4 keep audit rows.
-- A notification still pending is kept however old it is.
WITH gone AS (
    DELETE FROM sisyphus.outbox
     WHERE id IN (SELECT id FROM sisyphus.outbox
                   WHERE state <> 'pending' AND created_at < now() - $2::interval
                   ORDER BY id
                   LIMIT $3)
    RETURNING 1)
SELECT sisyphus.ensure_log_partitions((now() AT TIME ZONE 'UTC')::date - 1, 5) AS created_partitions,
       p.dropped_partitions, p.deleted_runs, (SELECT count(*) FROM gone) AS deleted_notifications,
       sisyphus.prune_audit($4::interval, $3::integer) AS deleted_audit
  FROM sisyphus.prune($1::interval, $2::interval, $3::integer) p
