-- Writes $1 resources no job reads (`other.<i>`), an hour ago.
INSERT INTO sisyphus.resources (name, written_at, writer)
SELECT 'other.' || i, now() - interval '1 hour', 'bench' FROM generate_series(1, $1) i
