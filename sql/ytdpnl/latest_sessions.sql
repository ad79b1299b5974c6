-- The seed's "latest sessions of a participant", keyed on code (participant.email was dropped).
SELECT p.code, s.id AS session_id, CAST(s.uuid AS text) AS session_uuid, s.created_at
FROM participant p
INNER JOIN session s ON s.participant_code = p.code
WHERE p.code = :code
ORDER BY s.id DESC
LIMIT :limit
