-- The tokens the caller may see (their own; admins all), newest first. Never a hash.
SELECT id, login::text AS login, label, created_at, created_by::text AS created_by, expires_at,
       revoked_at, last_used_at
  FROM sisyphus.tokens
 ORDER BY id DESC
