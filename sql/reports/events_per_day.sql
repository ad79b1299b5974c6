-- Events per day (UTC) and event type, for the data-quality report.
SELECT CAST(timestamp AS DATE) AS day, event, COUNT(*) AS n
FROM events
WHERE timestamp IS NOT NULL
GROUP BY CAST(timestamp AS DATE), event
ORDER BY day, event
