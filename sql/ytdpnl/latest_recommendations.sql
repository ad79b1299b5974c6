-- The seed's "latest items of the recommendations shown to a participant" with their videos,
-- keyed on code: newest list first, then list type (enum order) and position.
SELECT p.code, e.id AS event_id, e.url, e.created_at,
       CAST(v.list_type AS text) AS list_type, CAST(v.video_type AS text) AS video_type, v.position,
       vd.id AS video_id, vd.youtube_id, vd.title, vd.url AS video_url
FROM participant p
INNER JOIN session s ON s.participant_code = p.code
INNER JOIN event e ON e.session_uuid = s.uuid AND e.type = 'RECOMMENDATIONS_SHOWN'
INNER JOIN video_list_item v ON v.event_id = e.id
INNER JOIN video vd ON vd.id = v.video_id
WHERE p.code = :code
ORDER BY e.created_at DESC, e.id DESC, v.list_type, v.position
LIMIT :limit
