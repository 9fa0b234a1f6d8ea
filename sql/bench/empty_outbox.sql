-- Deletes every notification.
DELETE FROM sisyphus.outbox
