-- For a database migrated only through 0010 (the access bench's "before access control"): the
-- columns of runs that later migrations added and today's statements read (0013: rerun_of,
-- params; 0016: yielded_to), empty, so that the same statements run on both schemas. No index, trigger, policy or
-- default comes with them.
ALTER TABLE sisyphus.runs ADD COLUMN IF NOT EXISTS rerun_of bigint,
                          ADD COLUMN IF NOT EXISTS params jsonb,
                          ADD COLUMN IF NOT EXISTS yielded_to bigint
