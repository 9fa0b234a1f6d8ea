-- Deletes every run that is not pending.
DELETE FROM sisyphus.runs WHERE status <> 'pending'
