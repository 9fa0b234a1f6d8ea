-- The leader's alerts each tick: slow runs and overdue jobs (migrations/0007_notifications.sql).
SELECT slow, overdue FROM sisyphus.raise_alerts()
