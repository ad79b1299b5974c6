-- The seed's "watch times of the latest videos viewed by a participant", keyed on code.
SELECT p.code, e.id AS event_id, e.url, e.created_at, w.seconds_watched
FROM participant p
INNER JOIN session s ON s.participant_code = p.code
INNER JOIN event e ON e.session_uuid = s.uuid AND e.type = 'WATCH_TIME'
INNER JOIN watch_time w ON w.event_id = e.id
WHERE p.code = :code
ORDER BY e.created_at DESC, e.id DESC
LIMIT :limit
