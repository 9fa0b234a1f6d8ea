-- The dashboard at scale (issue 16): two fixes to how people's row-level security (0011, 0012)
-- is evaluated, found by the dashboard's benchmark (`sisyphus-bench web`: 10,000 jobs, 1M runs,
-- a 100,000-line log), with the same meaning as before.
--
-- 1. A person's read of log lines. The policy on `run_logs` was `run_id IN (SELECT id FROM
--    runs)`. Row-level security plans that as a subplan over every run the person may see; at
--    1M runs it no longer fits work_mem as a hash table, so PostgreSQL searches it linearly for
--    each line: EXPLAIN ANALYZE of the Run page's "where do the last 500 lines start"
--    (sql/logs/tail_start.sql) for a 100,000-line log, as an admin person: 69 s ("Materialize …
--    rows=1000001 loops=501"). Asked per line instead — is that line's run one the person may
--    see? — it is one index probe of `runs` (whose own policy's set of visible jobs is built once
--    per statement): 14 ms. The guardians' policy on `run_logs` (0012) has this form already.
ALTER POLICY people_read ON sisyphus.run_logs
    USING (EXISTS (SELECT 1 FROM sisyphus.runs r WHERE r.id = run_logs.run_id));

-- 2. Whether one of a person's grant patterns covers a project, which the policies on `jobs`
--    (and through it `runs`, `run_logs`, `outbox`, …) ask for every job a statement looks at.
--    0012's SQL function was meant to be inlined, but a function whose body has a sub-select
--    (`EXISTS (SELECT … FROM unnest(…))`) never is: each call ran as a query of its own, 4–7 µs,
--    so every statement of a viewer of one project cost 40–100 ms at 10,000 jobs before reading
--    a row (EXPLAIN: `Seq Scan on jobs … Filter: ($0 OR sisyphus.matches_any($1, project))`,
--    70 ms). The same rules in PL/pgSQL, whose simple expressions skip the executor: 3–4 times
--    cheaper. Same name, arguments, result and grants.
CREATE OR REPLACE FUNCTION sisyphus.matches_any(p_patterns text[], p_project text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    p text;
BEGIN
    IF p_patterns IS NULL THEN
        RETURN false;
    END IF;
    FOREACH p IN ARRAY p_patterns LOOP
        IF p = '*' OR p = p_project
           OR (p LIKE '%.*' AND (p_project = left(p, -2) OR starts_with(p_project, left(p, -1)))) THEN
            RETURN true;
        END IF;
    END LOOP;
    RETURN false;
END $$;
