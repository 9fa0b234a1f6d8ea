-- What each active session of this database (other than the caller) is doing now: its wait
-- event ('CPU' when none) and the start of its statement.
SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU'),
       left(regexp_replace(query, '\s+', ' ', 'g'), 60)
  FROM pg_stat_activity
 WHERE datname = current_database() AND state = 'active' AND pid <> pg_backend_pid()
