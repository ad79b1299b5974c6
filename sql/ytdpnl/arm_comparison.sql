-- Sufficient statistics (docs/sufficient-statistics.md) of treatment vs control in the
-- intervention phase: one unit per participant who ever entered phase 1 (participant arm), the
-- metric summed over the participant's phase-1 events and, as CUPED covariate, over its phase-0
-- events (event.phase, the phase at the time of the event). Events created in [:start, :end).
-- non_personalized_click_share is a ratio metric: NON_PERSONALIZED_CLICKED over all three
-- sidebar click kinds (no covariate).
WITH units AS (
  SELECT p.id, p.code, p.arm
  FROM participant p
  WHERE EXISTS (SELECT 1 FROM transition_event te WHERE te.participant_id = p.id AND te.to_phase = 1)
    AND (:all_codes OR p.code IN :codes)
),
per_unit AS (
  SELECT u.id, u.arm,
         sum(CASE WHEN e.phase = 1 AND e.type = 'PERSONALIZED_CLICKED' THEN 1.0 ELSE 0.0 END) AS personalized_1,
         sum(CASE WHEN e.phase = 0 AND e.type = 'PERSONALIZED_CLICKED' THEN 1.0 ELSE 0.0 END) AS personalized_0,
         sum(CASE WHEN e.phase = 1 AND e.type = 'NON_PERSONALIZED_CLICKED' THEN 1.0 ELSE 0.0 END) AS non_personalized_1,
         sum(CASE WHEN e.phase = 0 AND e.type = 'NON_PERSONALIZED_CLICKED' THEN 1.0 ELSE 0.0 END) AS non_personalized_0,
         sum(CASE WHEN e.phase = 1 AND e.type = 'MIXED_CLICKED' THEN 1.0 ELSE 0.0 END) AS mixed_1,
         sum(CASE WHEN e.phase = 0 AND e.type = 'MIXED_CLICKED' THEN 1.0 ELSE 0.0 END) AS mixed_0,
         sum(CASE WHEN e.phase = 1 AND e.type = 'HOME_INJECTED_TILE_CLICKED' THEN 1.0 ELSE 0.0 END) AS home_tile_1,
         sum(CASE WHEN e.phase = 0 AND e.type = 'HOME_INJECTED_TILE_CLICKED' THEN 1.0 ELSE 0.0 END) AS home_tile_0,
         sum(CASE WHEN e.phase = 1 AND e.type = 'WATCH_TIME' THEN coalesce(w.seconds_watched, 0) ELSE 0.0 END) AS watch_1,
         sum(CASE WHEN e.phase = 0 AND e.type = 'WATCH_TIME' THEN coalesce(w.seconds_watched, 0) ELSE 0.0 END) AS watch_0,
         sum(CASE WHEN e.phase = 1 AND e.type = 'PAGE_VIEW' THEN 1.0 ELSE 0.0 END) AS pages_1,
         sum(CASE WHEN e.phase = 0 AND e.type = 'PAGE_VIEW' THEN 1.0 ELSE 0.0 END) AS pages_0
  FROM units u
  LEFT JOIN session s ON s.participant_code = u.code
  LEFT JOIN event e ON e.session_uuid = s.uuid AND e.created_at >= :start AND e.created_at < :end
  LEFT JOIN watch_time w ON w.event_id = e.id AND e.type = 'WATCH_TIME'
  GROUP BY u.id, u.arm
),
long AS (
  SELECT arm, 'personalized_clicks' AS metric, 'count' AS metric_type, personalized_1 AS main, personalized_0 AS covariate, CAST(NULL AS double precision) AS denominator FROM per_unit
  UNION ALL SELECT arm, 'non_personalized_clicks', 'count', non_personalized_1, non_personalized_0, NULL FROM per_unit
  UNION ALL SELECT arm, 'mixed_clicks', 'count', mixed_1, mixed_0, NULL FROM per_unit
  UNION ALL SELECT arm, 'home_injected_tile_clicks', 'count', home_tile_1, home_tile_0, NULL FROM per_unit
  UNION ALL SELECT arm, 'watch_time_seconds', 'mean', watch_1, watch_0, NULL FROM per_unit
  UNION ALL SELECT arm, 'pages_viewed', 'count', pages_1, pages_0, NULL FROM per_unit
  UNION ALL SELECT arm, 'non_personalized_click_share', 'ratio', non_personalized_1, NULL, personalized_1 + non_personalized_1 + mixed_1 FROM per_unit
)
SELECT metric, metric_type, CAST(arm AS text) AS variation,
       count(*) AS users, count(*) AS count,
       CAST(sum(main) AS double precision) AS main_sum,
       CAST(sum(main * main) AS double precision) AS main_sum_squares,
       CAST(sum(denominator) AS double precision) AS denominator_sum,
       CAST(sum(denominator * denominator) AS double precision) AS denominator_sum_squares,
       CAST(sum(main * denominator) AS double precision) AS main_denominator_sum_product,
       CAST(sum(covariate) AS double precision) AS covariate_sum,
       CAST(sum(covariate * covariate) AS double precision) AS covariate_sum_squares,
       CAST(sum(main * covariate) AS double precision) AS main_covariate_sum_product
FROM long
GROUP BY metric, metric_type, arm
ORDER BY metric, variation
