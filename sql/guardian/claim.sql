-- Claims due runs for this host and returns what the guardian needs to start them, with whether
-- the run must take resource locks first (and how long it may wait for them), its cgroup's
-- limits, and how it runs and what it prints (`format`: sisyphus or ll.sisyphus).
-- $1 host, $2 pools, $3 how many, $4 lease.
SELECT c.*, cardinality(j.inputs) + cardinality(j.outputs) > 0 AS takes_locks,
       j.lock_wait, j.memory_max, j.cpu_weight, j.format,
       j.params <> '{}' AS takes_params
  FROM sisyphus.claim_runs($1, $2, $3, $4::interval) c
  JOIN sisyphus.jobs j ON j.id = c.job_id
