-- Ordered funnel: a unit enters with its first step-1 event (its dimension is that event's);
-- step k is its first step-k event at or after step k-1 and at most `within` after entering.
-- funnel_step.sql is repeated for steps 2..n. Units per step and dimension.
WITH ev AS (
{events}
),
step_1 AS (
  SELECT unit, dim, ts AS entered, ts AS t
  FROM (
    SELECT unit, dim, ts, ROW_NUMBER() OVER (PARTITION BY unit ORDER BY ts, dim) AS nth
    FROM ev
    WHERE unit IS NOT NULL AND event_type = :step_1
  ) first_entry
  WHERE nth = 1
){later_steps}
{step_counts}
