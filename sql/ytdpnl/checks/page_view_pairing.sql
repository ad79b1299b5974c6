-- Video-page PAGE_VIEW and RECOMMENDATIONS_SHOWN events without a counterpart (same session,
-- same url, other type) within the allowed gap. Either order is fine. Not reported: the known
-- quirk of the first RECOMMENDATIONS_SHOWN of a participant's first session created before
-- 2023-02-13 (the PAGE_VIEW of the first page was never recorded).
WITH watch_events AS (
  SELECT e.id, e.type, e.session_uuid, e.url, e.created_at
  FROM event e
  WHERE e.type = 'RECOMMENDATIONS_SHOWN' OR (e.type = 'PAGE_VIEW' AND e.url LIKE '%/watch%')
),
nearest AS (
  SELECT a.id, a.type, a.session_uuid, a.url, a.created_at,
         min(abs(CAST(EXTRACT(EPOCH FROM (b.created_at - a.created_at)) AS double precision))) AS nearest_gap_seconds
  FROM watch_events a
  LEFT JOIN watch_events b ON b.session_uuid = a.session_uuid AND b.url = a.url AND b.type <> a.type
  GROUP BY a.id, a.type, a.session_uuid, a.url, a.created_at
),
first_sessions AS (
  SELECT s.uuid, s.created_at,
         row_number() OVER (PARTITION BY s.participant_code ORDER BY s.created_at, s.id) AS session_rank
  FROM session s
),
first_shown AS (
  SELECT e.session_uuid, min(e.created_at) AS first_at
  FROM event e WHERE e.type = 'RECOMMENDATIONS_SHOWN' GROUP BY e.session_uuid
)
SELECT n.id, n.type, CAST(n.session_uuid AS text) AS session_uuid, n.url, n.created_at, n.nearest_gap_seconds
FROM nearest n
LEFT JOIN first_sessions f ON f.uuid = n.session_uuid
LEFT JOIN first_shown fs ON fs.session_uuid = n.session_uuid
WHERE (n.nearest_gap_seconds IS NULL OR n.nearest_gap_seconds > :max_gap_seconds)
  AND NOT (n.type = 'RECOMMENDATIONS_SHOWN' AND f.session_rank = 1
           AND f.created_at < :first_page_view_fix AND n.created_at = fs.first_at)
