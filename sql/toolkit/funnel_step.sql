,
step_{k} AS (
  SELECT p.unit, p.dim, p.entered, MIN(e.ts) AS t
  FROM step_{previous} p
  JOIN ev e ON e.unit = p.unit AND e.event_type = :step_{k}
           AND e.ts >= p.t AND e.ts <= p.entered + :within
  GROUP BY p.unit, p.dim, p.entered
)
