-- Each top-level statement run in this database since the last reset, with its calls and the
-- time spent in it (ms), most called first. $1: how many.
SELECT query, calls, total_exec_time
  FROM pg_stat_statements
 WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND toplevel
 ORDER BY calls DESC
 LIMIT $1
