-- Locks the given runs in ascending id order, before a transaction that records several of them
-- (pids, then outcomes) changes any: the heartbeat locks the runs it renews in the same order, so
-- the two never wait for each other in a cycle. `NO KEY UPDATE`, the lock their UPDATEs take.
-- $1 runs.
SELECT id FROM sisyphus.runs WHERE id = ANY ($1) ORDER BY id FOR NO KEY UPDATE
