-- Resources with their last writer, age and current locks (`sisyctl resources`).
-- $1: a name prefix ('' for all).
SELECT name, written_at, expires_at, writer, writer_run, version, available, readers, write_holder
  FROM sisyphus.resource_status
 WHERE name LIKE replace(replace(replace($1, '\', '\\'), '%', '\%'), '_', '\_') || '%'
 ORDER BY name
