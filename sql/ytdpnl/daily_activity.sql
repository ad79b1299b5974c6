-- Daily activity recomputed from raw events with the server's rules, beside the stored
-- daily_activity_time row of the same participant and day (full outer join: a day missing on
-- either side shows NULLs there). Rules: pages_viewed counts PAGE_VIEW; video_pages_viewed those
-- whose url contains /watch; time_spent_on_youtube_seconds adds each PAGE_VIEW's gap since the
-- previous PAGE_VIEW of its session when between 0 and 1800 s; video_time_viewed_seconds sums
-- WATCH_TIME seconds; sidebar_recommendations_clicked counts the three *_CLICKED types.
-- Gaps are taken before the day window applies, so a gap crossing the window's start counts.
WITH counted AS (
  SELECT p.id AS participant_id, p.code, e.id, e.type, e.url, e.created_at,
         CAST(e.created_at AS date) AS day,
         CAST(EXTRACT(EPOCH FROM (e.created_at - lag(e.created_at) OVER (PARTITION BY e.session_uuid, e.type ORDER BY e.created_at, e.id))) AS double precision) AS gap
  FROM participant p
  INNER JOIN session s ON s.participant_code = p.code
  INNER JOIN event e ON e.session_uuid = s.uuid
  WHERE e.type IN ('PAGE_VIEW', 'WATCH_TIME', 'PERSONALIZED_CLICKED', 'NON_PERSONALIZED_CLICKED', 'MIXED_CLICKED')
    AND (:all_codes OR p.code IN :codes)
),
recomputed AS (
  SELECT c.participant_id, c.code, c.day,
         sum(CASE WHEN c.type = 'PAGE_VIEW' THEN 1 ELSE 0 END) AS pages_viewed,
         sum(CASE WHEN c.type = 'PAGE_VIEW' AND c.url LIKE '%/watch%' THEN 1 ELSE 0 END) AS video_pages_viewed,
         sum(CASE WHEN c.type = 'WATCH_TIME' THEN coalesce(w.seconds_watched, 0) ELSE 0 END) AS video_time_viewed_seconds,
         sum(CASE WHEN c.type = 'PAGE_VIEW' AND c.gap BETWEEN 0 AND 1800 THEN c.gap ELSE 0 END) AS time_spent_on_youtube_seconds,
         sum(CASE WHEN c.type IN ('PERSONALIZED_CLICKED', 'NON_PERSONALIZED_CLICKED', 'MIXED_CLICKED') THEN 1 ELSE 0 END) AS sidebar_recommendations_clicked
  FROM counted c
  LEFT JOIN watch_time w ON w.event_id = c.id AND c.type = 'WATCH_TIME'
  GROUP BY c.participant_id, c.code, c.day
),
stored AS (
  SELECT d.participant_id, p.code, d.created_at AS day, d.pages_viewed, d.video_pages_viewed,
         d.video_time_viewed_seconds, d.time_spent_on_youtube_seconds, d.sidebar_recommendations_clicked
  FROM daily_activity_time d
  INNER JOIN participant p ON p.id = d.participant_id
  WHERE (:all_codes OR p.code IN :codes)
)
SELECT coalesce(r.participant_id, s.participant_id) AS participant_id,
       coalesce(r.code, s.code) AS code,
       coalesce(r.day, s.day) AS day,
       r.pages_viewed, r.video_pages_viewed, r.video_time_viewed_seconds, r.time_spent_on_youtube_seconds, r.sidebar_recommendations_clicked,
       s.pages_viewed AS stored_pages_viewed,
       s.video_pages_viewed AS stored_video_pages_viewed,
       CAST(s.video_time_viewed_seconds AS double precision) AS stored_video_time_viewed_seconds,
       CAST(s.time_spent_on_youtube_seconds AS double precision) AS stored_time_spent_on_youtube_seconds,
       s.sidebar_recommendations_clicked AS stored_sidebar_recommendations_clicked
FROM recomputed r
FULL OUTER JOIN stored s ON s.participant_id = r.participant_id AND s.day = r.day
WHERE coalesce(r.day, s.day) >= CAST(:start AS date) AND coalesce(r.day, s.day) < CAST(:end AS date)
ORDER BY participant_id, day
