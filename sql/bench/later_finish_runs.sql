-- The before-access-control schema's stand-in for 0020's `sisyphus.finish_runs`, which the
-- guardian's outcome batch calls: the runs' names serialised, then finish_run per outcome, as
-- the outcome statement did before 0020 (without the host check).
CREATE FUNCTION sisyphus.finish_runs(
    p_runs bigint[], p_statuses text[], p_exit integer[], p_signal integer[], p_summary text[],
    p_error text[], p_finished timestamptz[])
RETURNS TABLE (run bigint, recorded boolean) LANGUAGE sql VOLATILE AS $$
    WITH names AS MATERIALIZED (SELECT sisyphus.serialise_run_names(p_runs))
    SELECT t.r, sisyphus.finish_run(t.r, '{running,suspended}', t.s::sisyphus.run_status, t.x,
                                    t.g, t.m, t.e, t.f)
      FROM names, unnest(p_runs, p_statuses, p_exit, p_signal, p_summary, p_error, p_finished)
           AS t(r, s, x, g, m, e, f)
$$
