-- Turns the notification trigger on runs' outcomes off: the notify bench's baseline.
ALTER TABLE sisyphus.runs DISABLE TRIGGER runs_ended_notify
