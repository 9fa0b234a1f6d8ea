-- The before-access-control schema's stand-in for 0013's `sisyphus.claimed_params`, which the
-- guardian's claim calls after claiming: the same query, without the host check.
CREATE FUNCTION sisyphus.claimed_params(p_runs bigint[])
RETURNS TABLE (id bigint, params jsonb) LANGUAGE sql VOLATILE AS $$
    SELECT r.id, r.params FROM sisyphus.runs r WHERE r.id = ANY (p_runs) AND r.params IS NOT NULL
$$
