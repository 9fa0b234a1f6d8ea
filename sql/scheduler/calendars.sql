-- Every calendar as the scheduler evaluates it: name, zone, parsed entries (0017). Read when
-- `calendar_version.sql` moved since the last read (the version is read first, so a change in
-- between shows as a newer version at the next look).
SELECT name, zone, entries
  FROM sisyphus.calendars
 ORDER BY name
