-- Gives the leader lock back at shutdown. $1: LEADER_LOCK.
SELECT pg_advisory_unlock($1)
