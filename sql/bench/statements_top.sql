-- The statements of this database that took the most execution time since the reset, nested
-- ones (inside functions and triggers) included when `pg_stat_statements.track = all`.
-- $1 how many. Returns (calls, total ms, rows, top level?, query on one line).
SELECT s.calls, s.total_exec_time, s.rows, s.toplevel,
       left(regexp_replace(s.query, '\s+', ' ', 'g'), 160)
  FROM pg_stat_statements s
  JOIN pg_database d ON d.oid = s.dbid
 WHERE d.datname = current_database()
 ORDER BY s.total_exec_time DESC
 LIMIT $1
