-- The recommendation lists (NON_PERSONALIZED, PERSONALIZED, SHOWN) of a session's
-- RECOMMENDATIONS_SHOWN events, each item with its video and video_type, in position order.
SELECT v.event_id,
       v.list_type,
       v.position,
       v.video_type,
       vd.youtube_id,
       vd.url,
       vd.title
FROM event e
INNER JOIN video_list_item v ON v.event_id = e.id
INNER JOIN video vd ON vd.id = v.video_id
WHERE e.session_uuid = CAST(:session_uuid AS uuid)
  AND e.type = 'RECOMMENDATIONS_SHOWN'
  AND v.list_type IN ('NON_PERSONALIZED', 'PERSONALIZED', 'SHOWN')
ORDER BY v.event_id, v.list_type, v.position
