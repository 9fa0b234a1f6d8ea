-- Jobs of some projects, optionally one by name. $1: projects, $2: name or NULL.
 WHERE project = ANY ($1::text[]) AND ($2::text IS NULL OR name = $2)
 ORDER BY project, name
