-- Takes the leader lock (a session advisory lock) if nobody holds it. $1: LEADER_LOCK.
SELECT pg_try_advisory_lock($1)
