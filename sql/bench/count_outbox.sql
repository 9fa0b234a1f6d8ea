-- Notifications in the outbox, whatever their state.
SELECT count(*) FROM sisyphus.outbox
