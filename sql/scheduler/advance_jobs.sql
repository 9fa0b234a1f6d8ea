-- Moves each planned job's schedule on. $1: job ids, $2: next slots, $3: fired counts.
-- A job planned successfully loses its scheduler error mark (migrations/0008_isolation.sql).
UPDATE sisyphus.jobs j
   SET next_slot = t.next_slot, fired = t.fired, scheduler_error = NULL, scheduler_error_at = NULL
  FROM unnest($1::bigint[], $2::timestamptz[], $3::integer[]) AS t(id, next_slot, fired)
 WHERE j.id = t.id
