-- Schedules beyond cron (issue 18): the two enum values the overlap policies, calendars and
-- backfill write, in a migration of their own so that the later migrations of that issue can use
-- them (a value added by ALTER TYPE … ADD VALUE is usable only once its transaction committed).
--
-- `skipped`: a slot that came due and was deliberately not run — excluded by a calendar, or
-- yielded to a run already active under the job's overlap policy. A final status written by the
-- scheduler (or the claim), never by a guardian; the reason is in `error`, as for `missed`.
-- `backfill`: a run of a past slot asked for with `sisyctl backfill` / `sisyphus.backfill`.
ALTER TYPE sisyphus.run_status ADD VALUE IF NOT EXISTS 'skipped';
ALTER TYPE sisyphus.run_trigger ADD VALUE IF NOT EXISTS 'backfill';
