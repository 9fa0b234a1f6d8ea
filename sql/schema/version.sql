-- The newest migration applied successfully.
SELECT max(version) FROM sisyphus._sqlx_migrations WHERE success
