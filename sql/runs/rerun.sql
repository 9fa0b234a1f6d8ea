-- A new run of the same job, slot and target host as run $1, linked to it; returns its id. Who
-- asked: the person, also through the dashboard (`sisyphus.person()`).
SELECT sisyphus.rerun($1, p_by => sisyphus.person())
