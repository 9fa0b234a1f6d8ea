-- Creates a data-triggered run for each candidate slot whose inputs (the job's templates resolved
-- at that slot) are all written and not expired. A slot that has a run already is skipped by the
-- unique index `runs_one_per_slot`: one run per fresh set of inputs.
-- $1 job, $2 candidate slots, $3 now, $4 created_by.
INSERT INTO sisyphus.runs (job_id, slot, scheduled_for, expires_at, trigger, created_by, params)
SELECT j.id, s.slot, $3::timestamptz, $3::timestamptz + j.ttl, 'data', $4::text,
       sisyphus.run_params(j.params, NULL, s.slot, j.timezone)
  FROM sisyphus.jobs j
 CROSS JOIN unnest($2::timestamptz[]) AS s(slot)
 WHERE j.id = $1
   AND NOT EXISTS (
        SELECT 1
          FROM unnest(j.inputs) AS t(template)
          LEFT JOIN sisyphus.resources r
                 ON r.name = sisyphus.resource_name(t.template, s.slot, j.timezone)
         WHERE r.name IS NULL OR r.expires_at <= $3::timestamptz)
ON CONFLICT DO NOTHING
