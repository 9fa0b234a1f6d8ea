-- The leader's look after each tick at overlap policies (migrations/0016_overlap_backfill.sql):
-- scheduled runs of jobs with a policy that came due after $1 or were written after run id $2
-- (NULLs: every due one), settled under their jobs' claim locks. Returns the next look's $1 and
-- $2, how many runs it skipped and how many it asked to terminate (replace).
SELECT settled_to, last_id, skipped, replaced FROM sisyphus.settle_due_overlaps($1, $2)
