-- Events and distinct units per time bucket (hour, day, week or month) and event type.
WITH ev AS (
{events}
)
SELECT date_trunc('{grain}', ts) AS period,
       event_type,
       COUNT(*) AS events,
       COUNT(DISTINCT unit) AS units
FROM ev
WHERE {type_filter}
GROUP BY date_trunc('{grain}', ts), event_type
ORDER BY period, event_type
