-- A participant's sessions as GET /api/participant/{code} summarises them: per session its
-- creation, started_at = first event, ended_at = last event and event count (latest first).
SELECT p.code,
       s.id AS session_id,
       CAST(s.uuid AS text) AS session_uuid,
       s.created_at,
       min(e.created_at) AS started_at,
       max(e.created_at) AS ended_at,
       count(e.id) AS event_count
FROM participant p
INNER JOIN session s ON s.participant_code = p.code
LEFT JOIN event e ON e.session_uuid = s.uuid
WHERE p.code = :code
  AND s.created_at >= :start AND s.created_at < :end
GROUP BY p.code, s.id, s.uuid, s.created_at
ORDER BY s.id DESC
