-- Audit rows of control actions on runs (terminate, suspend, resume).
SELECT count(*) FROM sisyphus.audit WHERE action IN ('run.terminate', 'run.suspend', 'run.resume')
