-- Whether any run is pending, running or suspended, through the partial indexes only (a count
-- over runs, polled, would itself eat a core once the table is large).
SELECT EXISTS (SELECT 1 FROM sisyphus.runs WHERE status = 'pending')
    OR EXISTS (SELECT 1 FROM sisyphus.runs WHERE status IN ('running', 'suspended'))
