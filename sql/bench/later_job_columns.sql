-- For a database migrated only through 0010 (the access bench's "before access control"): the
-- columns of jobs that later migrations added and today's statements read (0013: params, with
-- its default), so that the same statements run on both schemas.
ALTER TABLE sisyphus.jobs ADD COLUMN IF NOT EXISTS params jsonb NOT NULL DEFAULT '{}'
