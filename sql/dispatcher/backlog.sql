-- Notifications not yet delivered (the outbox backlog), through the partial index outbox_due.
SELECT count(*) FROM sisyphus.outbox WHERE state = 'pending'
