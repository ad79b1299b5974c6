-- Channel-source rotation as the home pages saw it: per participant, arm and phase (the event's),
-- day (UTC) and channel, the HOME_SHOWN events created in [:start, :end) whose
-- HOME_REPLACEMENT_SOURCE list held videos of that channel (the channel of video_metadata; a video
-- without metadata counts under a NULL channel) and how many of the list's items were that channel's.
SELECT p.code, CAST(e.arm AS text) AS arm, e.phase, CAST(e.created_at AS date) AS day,
       m.youtube_channel_id,
       count(DISTINCT e.id) AS home_shown,
       count(*) AS pool_videos
FROM participant p
INNER JOIN session s ON s.participant_code = p.code
INNER JOIN event e ON e.session_uuid = s.uuid
INNER JOIN video_list_item i ON i.event_id = e.id AND i.list_type = 'HOME_REPLACEMENT_SOURCE'
INNER JOIN video v ON v.id = i.video_id
LEFT JOIN video_metadata m ON m.youtube_id = v.youtube_id
WHERE e.type = 'HOME_SHOWN'
  AND e.created_at >= :start AND e.created_at < :end
  AND (:all_codes OR p.code IN :codes)
GROUP BY p.code, e.arm, e.phase, CAST(e.created_at AS date), m.youtube_channel_id
ORDER BY day, p.code, m.youtube_channel_id
