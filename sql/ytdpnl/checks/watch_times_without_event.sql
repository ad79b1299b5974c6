-- watch_time rows whose event is missing or is not a WATCH_TIME event (id = watch_time.event_id).
SELECT w.event_id AS id, w.seconds_watched, CAST(e.type AS text) AS event_type
FROM watch_time w
LEFT JOIN event e ON e.id = w.event_id
WHERE e.id IS NULL OR e.type <> 'WATCH_TIME'
