-- Sessionization: per unit, events ordered by time; a session starts at a unit's first event
-- and after every gap longer than the inactivity parameter. Events tied on the timestamp share a session
-- (the running sum's default RANGE frame includes peers). Events without a unit are skipped.
WITH ev AS (
{events}
),
gaps AS (
  SELECT unit, ts, event_type,
         CASE WHEN LAG(ts) OVER (PARTITION BY unit ORDER BY ts) IS NULL
                OR ts - LAG(ts) OVER (PARTITION BY unit ORDER BY ts) > :inactivity
              THEN 1 ELSE 0 END AS starts_session
  FROM ev
  WHERE unit IS NOT NULL
),
numbered AS (
  SELECT unit, ts, event_type,
         SUM(starts_session) OVER (PARTITION BY unit ORDER BY ts) AS session_number
  FROM gaps
)
SELECT unit,
       CAST(session_number AS BIGINT) AS session,
       MIN(ts) AS session_start,
       MAX(ts) AS session_end,
       EXTRACT(EPOCH FROM MAX(ts)) - EXTRACT(EPOCH FROM MIN(ts)) AS duration_s,
       COUNT(*) AS events,
       {pages} AS pages
FROM numbered
GROUP BY unit, session_number
ORDER BY unit, session
