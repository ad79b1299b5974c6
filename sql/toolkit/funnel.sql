-- Ordered funnel, without self-joins: per unit, window functions over its funnel events give
-- t_1 = its first step-1 event (the entry; the dimension is that event's), then each t_k = its
-- first step-k event at or after t_(k-1) and at most `within` after t_1 (funnel_step.sql is
-- repeated for steps 2..n). Units reaching each step, per dimension value.
WITH ev AS (
{events}
),
level_1 AS (
  SELECT unit, ts, event_type,
         MIN(CASE WHEN event_type = :step_1 THEN ts END) OVER (PARTITION BY unit) AS t_1,
         FIRST_VALUE(dim) OVER (PARTITION BY unit
                                ORDER BY CASE WHEN event_type = :step_1 THEN 0 ELSE 1 END, ts, dim) AS dim
  FROM ev
  WHERE unit IS NOT NULL AND {step_filter}
){later_steps},
reached AS (
  SELECT unit, dim, {reached_times}
  FROM level_{n}
  GROUP BY unit, dim
)
SELECT dim, {step_counts}
FROM reached
WHERE t_1 IS NOT NULL
GROUP BY dim
ORDER BY dim
