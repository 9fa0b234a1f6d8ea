-- No JIT compilation in this session, as the dashboard's transactions have none (sql/web/sign_in.sql):
-- the baseline runs the dashboard's statements under the same settings.
SET jit = off
