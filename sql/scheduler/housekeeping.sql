-- The leader's housekeeping, about once a minute: daily log partitions from yesterday to three
-- days ahead (UTC), then retention. $1 keep logs, $2 keep runs, $3 most runs deleted at once.
SELECT sisyphus.ensure_log_partitions((now() AT TIME ZONE 'UTC')::date - 1, 5) AS created_partitions,
       p.dropped_partitions, p.deleted_runs
  FROM sisyphus.prune($1, $2, $3) p
