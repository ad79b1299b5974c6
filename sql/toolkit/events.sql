-- The events of a source in the time window, oldest first.
WITH ev AS (
{events}
)
SELECT unit, ts, event_type, value
FROM ev
WHERE {type_filter}
ORDER BY ts, unit, event_type
