-- The payload of one notification in the outbox, any.
SELECT payload FROM sisyphus.outbox LIMIT 1
