,
level_{k} AS (
  SELECT l.*,
         MIN(CASE WHEN event_type = :step_{k} AND ts >= t_{previous} AND ts <= t_1 + :within THEN ts END)
           OVER (PARTITION BY unit) AS t_{k}
  FROM level_{previous} l
)
