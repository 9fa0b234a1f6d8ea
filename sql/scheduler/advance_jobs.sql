-- Moves each planned job's schedule on. $1: job ids, $2: next slots, $3: fired counts.
UPDATE sisyphus.jobs j
   SET next_slot = t.next_slot, fired = t.fired
  FROM unnest($1::bigint[], $2::timestamptz[], $3::integer[]) AS t(id, next_slot, fired)
 WHERE j.id = t.id
