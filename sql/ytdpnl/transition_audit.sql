-- Phase-transition audit, one row per (transition_event, stored day of the phase it ends):
-- the phase began at the participant's previous transition (or at the participant's creation
-- for the first one) and the days counted are those from that entry day up to the day before the
-- transition. `matched` says whether the day reached the setting's minimums: ANY or ALL (per
-- `operator`) of the non-zero minimums, every day when all minimums are zero. FORCED transitions
-- have no setting (matched is NULL); a transition with no stored day in its phase appears once
-- with a NULL day.
WITH ordered AS (
  SELECT te.*, lag(te.created_at) OVER (PARTITION BY te.participant_id ORDER BY te.created_at, te.id) AS previous_at
  FROM transition_event te
),
periods AS (
  SELECT o.id AS transition_event_id, p.id AS participant_id, p.code, o.reason, o.from_phase, o.to_phase,
         o.created_at AS transitioned_at, CAST(coalesce(o.previous_at, p.created_at) AS date) AS entry_day,
         CAST(o.created_at AS date) AS transition_day, o.transition_setting_id, o.num_days,
         o.pages_viewed, o.video_pages_viewed, o.video_time_viewed_seconds, o.time_spent_on_youtube_seconds,
         o.sidebar_recommendations_clicked
  FROM ordered o
  INNER JOIN participant p ON p.id = o.participant_id
  WHERE (:all_codes OR p.code IN :codes)
    AND o.created_at >= :start AND o.created_at < :end
)
SELECT pe.transition_event_id, pe.participant_id, pe.code, pe.reason, pe.from_phase, pe.to_phase, pe.transitioned_at,
       pe.entry_day, pe.transition_day, ts.operator, ts.min_days, pe.num_days,
       pe.pages_viewed, pe.video_pages_viewed,
       CAST(pe.video_time_viewed_seconds AS double precision) AS video_time_viewed_seconds,
       CAST(pe.time_spent_on_youtube_seconds AS double precision) AS time_spent_on_youtube_seconds,
       pe.sidebar_recommendations_clicked,
       d.created_at AS day,
       d.pages_viewed AS day_pages_viewed,
       d.video_pages_viewed AS day_video_pages_viewed,
       CAST(d.video_time_viewed_seconds AS double precision) AS day_video_time_viewed_seconds,
       CAST(d.time_spent_on_youtube_seconds AS double precision) AS day_time_spent_on_youtube_seconds,
       d.sidebar_recommendations_clicked AS day_sidebar_recommendations_clicked,
       CASE
         WHEN ts.id IS NULL OR d.id IS NULL THEN NULL
         WHEN ts.min_pages_viewed = 0 AND ts.min_video_pages_viewed = 0 AND ts.min_video_time_viewed_seconds = 0
              AND ts.min_time_spent_on_youtube_seconds = 0 AND ts.min_sidebar_recommendations_clicked = 0 THEN true
         WHEN ts.operator = 'ANY' THEN
              (ts.min_pages_viewed > 0 AND d.pages_viewed >= ts.min_pages_viewed)
           OR (ts.min_video_pages_viewed > 0 AND d.video_pages_viewed >= ts.min_video_pages_viewed)
           OR (ts.min_video_time_viewed_seconds > 0 AND d.video_time_viewed_seconds >= ts.min_video_time_viewed_seconds)
           OR (ts.min_time_spent_on_youtube_seconds > 0 AND d.time_spent_on_youtube_seconds >= ts.min_time_spent_on_youtube_seconds)
           OR (ts.min_sidebar_recommendations_clicked > 0 AND d.sidebar_recommendations_clicked >= ts.min_sidebar_recommendations_clicked)
         ELSE
              (ts.min_pages_viewed = 0 OR d.pages_viewed >= ts.min_pages_viewed)
          AND (ts.min_video_pages_viewed = 0 OR d.video_pages_viewed >= ts.min_video_pages_viewed)
          AND (ts.min_video_time_viewed_seconds = 0 OR d.video_time_viewed_seconds >= ts.min_video_time_viewed_seconds)
          AND (ts.min_time_spent_on_youtube_seconds = 0 OR d.time_spent_on_youtube_seconds >= ts.min_time_spent_on_youtube_seconds)
          AND (ts.min_sidebar_recommendations_clicked = 0 OR d.sidebar_recommendations_clicked >= ts.min_sidebar_recommendations_clicked)
       END AS matched
FROM periods pe
LEFT JOIN transition_setting ts ON ts.id = pe.transition_setting_id
LEFT JOIN daily_activity_time d ON d.participant_id = pe.participant_id
      AND d.created_at >= pe.entry_day AND d.created_at < pe.transition_day
ORDER BY pe.transition_event_id, day
