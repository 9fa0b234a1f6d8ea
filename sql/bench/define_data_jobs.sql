-- Defines $1 idle data-triggered jobs (half with a templated input `idle.<i>.events.{date}`,
-- half with a plain one `idle.<i>.plain`) and $2 active ones (`active.<k>.events.{date}`).
INSERT INTO sisyphus.jobs (project, name, command, on_inputs, inputs)
SELECT 'Bench', 'idle' || i, '{true}'::text[], true,
       ARRAY[CASE WHEN i % 2 = 0 THEN 'idle.' || i || '.events.{date}'
                  ELSE 'idle.' || i || '.plain' END]
  FROM generate_series(1, $1) i
UNION ALL
SELECT 'Bench', 'active' || k, '{true}'::text[], true, ARRAY['active.' || k || '.events.{date}']
  FROM generate_series(1, $2) k
