-- Per unit: events, distinct event types, sum of the value column, first and last seen, active
-- days (distinct UTC dates), and one count per requested type.
WITH ev AS (
{events}
)
SELECT unit,
       COUNT(*) AS events,
       COUNT(DISTINCT event_type) AS event_types,
       SUM(value) AS value_sum,
       MIN(ts) AS first_seen,
       MAX(ts) AS last_seen,
       COUNT(DISTINCT CAST(ts AS DATE)) AS active_days{type_counts}
FROM ev
WHERE unit IS NOT NULL AND {type_filter}
GROUP BY unit
ORDER BY unit
