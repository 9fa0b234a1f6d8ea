-- A fleet of idle guardians (issue 17, target 5): a guardian's beat is an UPDATE of its `hosts`
-- row, and 0012's trigger checked the login's binding to the host on every one of them — a query
-- of `service_hosts` per beat, about a fifth of the beat's cost (pgbench as a guardian login on a
-- private cluster: 0.35–0.46 ms a beat with the check, 0.31–0.36 without). The check is needed
-- only where a row gets its name: a guardian may not change a name (0012 grants it no UPDATE of
-- `name`), and the policy `guardian_own` already limits its updates to its own hosts' rows. So
-- the trigger now fires on INSERT (registration, including the INSERT of an upsert) and on an
-- UPDATE that sets `name`; its refusal stays the one that names the binding.
DROP TRIGGER hosts_check_guardian ON sisyphus.hosts;
CREATE TRIGGER hosts_check_guardian BEFORE INSERT OR UPDATE OF name ON sisyphus.hosts
    FOR EACH ROW EXECUTE FUNCTION sisyphus.hosts_check_guardian();
