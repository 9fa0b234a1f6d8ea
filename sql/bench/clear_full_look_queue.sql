-- Empties the queue of full looks, as the first tick after jobs were defined does.
DELETE FROM sisyphus.data_trigger_queue
