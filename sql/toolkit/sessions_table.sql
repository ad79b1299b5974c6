-- The same figures as sessions_derived.sql, read from an existing table of sessions; events per
-- session are counted from the event source when both sides carry a session id.
WITH ev AS (
{events}
),
s AS (
  SELECT {s_unit} AS unit, {s_id} AS session, {s_start} AS session_start,
         {s_duration} AS duration_s, {s_pages} AS pages
  FROM {s_table}
  WHERE {s_unit} IS NOT NULL AND {s_time_filter}
),
per_session AS (
  SELECT session_id, COUNT(*) AS events FROM ev WHERE session_id IS NOT NULL GROUP BY session_id
)
SELECT s.unit,
       s.session,
       s.session_start,
       s.session_start + s.duration_s * INTERVAL '1 second' AS session_end,
       s.duration_s,
       {s_events} AS events,
       s.pages
FROM s{s_events_join}
ORDER BY s.unit, s.session_start, s.session
