-- Projects' stored default notification rules, for comparing with a jobs file's
-- `[projects.NAME]` sections (`apply --plan`). $1: projects.
SELECT project, notify FROM sisyphus.project_defaults WHERE project = ANY ($1::text[]) ORDER BY project
