-- The file a calendar was set from, as given. $1 name.
SELECT source FROM sisyphus.calendars WHERE name = $1
