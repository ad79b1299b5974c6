-- Rows per day in each of GrowthBook's sample tables (seed 000), one row per (day, series).
-- :since is the first day to include (bound parameter).
SELECT CAST(timestamp AS DATE) AS day, 'page views' AS series, COUNT(*) AS n
FROM pages WHERE timestamp >= :since GROUP BY CAST(timestamp AS DATE)
UNION ALL
SELECT CAST(sessionStart AS DATE), 'sessions', COUNT(*)
FROM sessions WHERE sessionStart >= :since GROUP BY CAST(sessionStart AS DATE)
UNION ALL
SELECT CAST(timestamp AS DATE), 'events', COUNT(*)
FROM events WHERE timestamp >= :since GROUP BY CAST(timestamp AS DATE)
UNION ALL
SELECT CAST(timestamp AS DATE), 'experiment exposures', COUNT(*)
FROM experiment_viewed WHERE timestamp >= :since GROUP BY CAST(timestamp AS DATE)
UNION ALL
SELECT CAST(timestamp AS DATE), 'orders', COUNT(*)
FROM orders WHERE timestamp >= :since GROUP BY CAST(timestamp AS DATE)
ORDER BY 1, 2
