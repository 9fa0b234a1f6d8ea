-- Whether the migrations table exists (a database never migrated has none).
SELECT to_regclass('sisyphus._sqlx_migrations') IS NOT NULL
