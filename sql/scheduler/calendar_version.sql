-- The calendars' version: bumped by every change of `sisyphus.calendars` (0017), so the
-- scheduler reads the calendars again only when it moved. One row.
SELECT version FROM sisyphus.calendar_state
