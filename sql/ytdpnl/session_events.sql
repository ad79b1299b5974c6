-- A session's events newest first, as GET /api/event-overviews/{sessionUuid} lists them, with
-- the seconds of WATCH_TIME events (their lists come from session_event_lists.sql).
SELECT e.id,
       e.type,
       e.url,
       e.context,
       e.arm,
       e.phase,
       e.created_at,
       w.seconds_watched
FROM event e
LEFT JOIN watch_time w ON w.event_id = e.id AND e.type = 'WATCH_TIME'
WHERE e.session_uuid = CAST(:session_uuid AS uuid)
ORDER BY e.created_at DESC, e.id DESC
