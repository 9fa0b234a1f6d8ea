-- How many runs were made since $1, by status (the Overview's counts of today).
SELECT r.status::text AS status, count(*) AS n
  FROM sisyphus.runs r
 WHERE r.created_at >= $1::timestamptz
 GROUP BY r.status
 ORDER BY r.status
