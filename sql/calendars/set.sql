-- Creates or replaces a calendar (admins only; an audit row `calendar.set`). $1 name, $2 zone,
-- $3 format (`ics` or `toml`), $4 the file as given, $5 the parsed entries (JSON array),
-- $6 description. Returns whether it was new.
SELECT sisyphus.set_calendar($1, $2, $3, $4, $5, $6)
