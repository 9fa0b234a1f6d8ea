-- Sets a project's default notification rules ($1 project, $2 rules as JSON).
INSERT INTO sisyphus.project_defaults (project, notify) VALUES ($1, $2)
ON CONFLICT (project) DO UPDATE SET notify = EXCLUDED.notify, updated_at = now()
 WHERE sisyphus.project_defaults.notify IS DISTINCT FROM EXCLUDED.notify
