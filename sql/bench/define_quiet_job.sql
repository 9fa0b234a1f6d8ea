-- Defines the job `Quiet/job0`, run only when asked: a project that has no runs.
INSERT INTO sisyphus.jobs (project, name, command)
VALUES ('Quiet', 'job0', '{true}')
