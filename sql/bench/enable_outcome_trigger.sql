-- Turns the notification trigger on runs' outcomes back on (the production setting).
ALTER TABLE sisyphus.runs ENABLE TRIGGER runs_ended_notify
