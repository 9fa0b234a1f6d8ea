-- Resumes the jobs whose pause has ended (`paused_until` passed); how many.
SELECT sisyphus.resume_ended_pauses()
