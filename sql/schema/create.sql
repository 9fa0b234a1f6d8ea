-- The schema the migrations and their bookkeeping live in (`public` stays untouched).
CREATE SCHEMA IF NOT EXISTS sisyphus
