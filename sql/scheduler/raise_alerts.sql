-- The leader's alerts (migrations/0007_notifications.sql): slow runs each tick; overdue jobs
-- when $1.
SELECT slow, overdue FROM sisyphus.raise_alerts($1)
