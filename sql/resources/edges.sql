-- The lineage history: input→output edges, digits folded to `*` (`sisyctl graph`).
-- $1: only the edges written by this job (NULL: all). Folded names repeat across writers.
SELECT source, target, writer, times
  FROM sisyphus.resource_edges
 WHERE $1::bigint IS NULL OR writer_job = $1
 ORDER BY source, target, writer
