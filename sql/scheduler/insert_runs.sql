-- Materialises planned slots as runs, all in one statement. A slot that exists already (another
-- scheduler got there first) is skipped by the unique index `runs_one_per_slot` — invariant `one-run-per-slot`.
-- Missed slots are written as finished `missed` runs so that history shows the gap, and slots a
-- calendar excludes as finished `skipped` runs naming it.
INSERT INTO sisyphus.runs (job_id, slot, scheduled_for, expires_at, target_host, status,
                           finished_at, error, created_by, params)
SELECT t.job_id, t.slot, t.scheduled_for, t.expires_at, t.target_host,
       t.status::sisyphus.run_status,
       CASE WHEN t.status IN ('missed', 'skipped') THEN $8::timestamptz END,
       t.error, $9::text,
       -- The defaults, resolved at the slot (jobs that declare none: NULL, without a call).
       CASE WHEN j.params <> '{}' THEN sisyphus.run_params(j.params, NULL, t.slot, j.timezone) END
  FROM unnest($1::bigint[], $2::timestamptz[], $3::timestamptz[], $4::timestamptz[],
              $5::text[], $6::text[], $7::text[])
       AS t(job_id, slot, scheduled_for, expires_at, target_host, status, error)
  JOIN sisyphus.jobs j ON j.id = t.job_id
ON CONFLICT DO NOTHING
