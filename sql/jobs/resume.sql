-- Resumes a paused job; false when it was not paused. $1 project, $2 name.
SELECT sisyphus.resume_job($1, $2)
