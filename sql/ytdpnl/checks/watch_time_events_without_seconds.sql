-- WATCH_TIME events with no watch_time row.
SELECT e.id, CAST(e.session_uuid AS text) AS session_uuid, e.url, e.created_at
FROM event e
LEFT JOIN watch_time w ON w.event_id = e.id
WHERE e.type = 'WATCH_TIME' AND w.event_id IS NULL
