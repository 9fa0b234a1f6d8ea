-- Moves the global data-trigger watermark to now: every write so far counts as seen.
UPDATE sisyphus.data_trigger_state SET seen_until = now()
