-- Sessions that no event refers to.
SELECT s.id, CAST(s.uuid AS text) AS session_uuid, s.participant_code AS code, s.created_at
FROM session s
WHERE NOT EXISTS (SELECT 1 FROM event e WHERE e.session_uuid = s.uuid)
