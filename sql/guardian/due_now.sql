-- Whether a pending run this host could take is due now: the safety-net poll's probe (index
-- probes, microseconds), so that an idle guardian runs the claim only when there is something to
-- claim (the claim's function costs about a millisecond even when it finds nothing, and a fleet
-- of 200 idle guardians polling every 2 s ran 100 of them a second). A due run whose job is at
-- its concurrency makes it true: then the guardian claims, as it did on every poll before.
-- $1 host, $2 pools.
SELECT EXISTS (
    SELECT 1
      FROM sisyphus.runs r
      JOIN sisyphus.jobs j ON j.id = r.job_id
     WHERE r.status = 'pending' AND r.scheduled_for <= now()
       AND (r.target_host = $1
            OR (r.target_host IS NULL AND NOT j.target_all
                AND (j.target_pool IS NULL OR j.target_pool = ANY ($2)))))
