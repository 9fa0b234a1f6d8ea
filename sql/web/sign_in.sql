-- The start of each of the dashboard's transactions for a person signed in with a token: $1, the
-- token's SHA-256, names the person (or raises 28000); the rest of the transaction runs as that
-- person (their role: grants and row-level security apply) and on their behalf (the audit's
-- `on_behalf_of`, `sisyphus.person()`). The person's login. Without JIT compilation: the pages'
-- reads are short, but row-level security's subplans inflate their estimated cost past
-- jit_above_cost, and compiling then took 75–115 ms of a 20–140 ms Jobs page (EXPLAIN ANALYZE at
-- 10,000 jobs and 1M runs).
SELECT set_config('sisyphus.on_behalf_of', p, true) AS person, set_config('role', p, true) AS role,
       set_config('jit', 'off', true) AS jit
  FROM (SELECT sisyphus.web_sign_in($1::bytea)::text AS p) who
