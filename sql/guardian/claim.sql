-- Claims due runs for this host and returns what the guardian needs to start them.
-- $1 host, $2 pools, $3 how many, $4 lease.
SELECT r.id, r.job_id, r.attempt, r.scheduled_for, j.project, j.name, j.command, j.shell, j.env,
       j.workdir, j.maxtime, j.run_as, j.userdata, j.keep_logs, j.compress_logs, j.compress_mode
  FROM sisyphus.claim_runs($1, $2, $3, $4::interval) AS c(id)
  JOIN sisyphus.runs r ON r.id = c.id
  JOIN sisyphus.jobs j ON j.id = r.job_id
