-- Ordered funnel: a unit enters with its first step-1 event (its dimension is that event's);
-- step k is its first step-k event at or after step k-1 and at most `within` after entering.
-- The entry's dimension is a window (FIRST_VALUE) only when there is one.
-- funnel_step.sql is repeated for steps 2..n: each one a hash join of the units still in the
-- funnel with the events of that step. Units reaching each step, per dimension value.
WITH ev AS (
{events}
),
step_1 AS (
  SELECT unit, MIN(entry_dim) AS dim, MIN(ts) AS entered, MIN(ts) AS t
  FROM (
    SELECT unit, ts, {entry_dim} AS entry_dim
    FROM ev
    WHERE unit IS NOT NULL AND event_type = :step_1
  ) entries
  GROUP BY unit
){later_steps}
{step_counts}
