-- A fleet of guardians (issue 17, target 5): a run made now wakes two guardians, not all of
-- them. Until now `run_now` sent `NOTIFY sisyphus_runs, ''`, which every guardian answered with
-- a claim: with 200 idle guardians one `run_now` cost 200 claim statements (one claimed the run,
-- 199 found nothing). Now the payload names the guardians that should claim — two live,
-- undrained hosts of the job's pool chosen at random (two, so that one that has just died or is
-- full does not leave the run to the guardians' safety-net polls) — as `wake <host> <host>`;
-- host names are simple names, so a space separates them. A guardian not named ignores the
-- notification. An empty payload still wakes every guardian: the scheduler's tick, an `all` job
-- (one run per host: each host claims its own), `finish_run`'s freed slots and retries, and a
-- pool without a live host.

-- Two live, undrained guardians of `p_pool` (any when NULL) as a wake-up payload, or '' when
-- there is none. Called by the owner's functions only.
CREATE FUNCTION sisyphus.wake_payload(p_pool text) RETURNS text
LANGUAGE sql VOLATILE AS $$
    SELECT coalesce('wake ' || string_agg(name, ' '), '')
      FROM (SELECT name FROM sisyphus.live_hosts
             WHERE NOT draining AND (p_pool IS NULL OR p_pool = ANY (pools))
             ORDER BY random() LIMIT 2) h
$$;
REVOKE EXECUTE ON FUNCTION sisyphus.wake_payload(text) FROM PUBLIC;

-- 0002's `run_now` (renamed `run_now_unchecked` by 0011, called by the checked `run_now` of
-- 0011 and 0013) with the payload above; otherwise unchanged.
CREATE OR REPLACE FUNCTION sisyphus.run_now_unchecked(p_project text, p_name text,
                                                      p_by text DEFAULT session_user)
RETURNS SETOF bigint LANGUAGE plpgsql AS $$
DECLARE
    j sisyphus.jobs := sisyphus.find_job(p_project, p_name);
    t timestamptz := clock_timestamp();
    n integer;
BEGIN
    RETURN QUERY
    INSERT INTO sisyphus.runs (job_id, slot, scheduled_for, expires_at, target_host, trigger, created_by)
    SELECT j.id, t, t, t + j.ttl, h.name, 'manual', p_by
      FROM (SELECT NULL::text AS name WHERE NOT j.target_all
            UNION ALL
            SELECT lh.name FROM sisyphus.live_hosts lh
             WHERE j.target_all AND NOT lh.draining
               AND (j.target_pool IS NULL OR j.target_pool = ANY (lh.pools))) h
    RETURNING id;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n = 0 THEN
        RAISE EXCEPTION 'job %/% runs on all hosts%, and no live host is there',
            p_project, p_name, coalesce(' of pool ' || j.target_pool, '')
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    PERFORM pg_notify('sisyphus_runs',
                      CASE WHEN j.target_all THEN '' ELSE sisyphus.wake_payload(j.target_pool) END);
END $$;
