-- Experiments logged in experiment_viewed: per experiment and variation, distinct users,
-- anonymous visitors, exposures and the first and last exposure.
SELECT
  experimentId AS experiment_id,
  variationId AS variation_id,
  COUNT(DISTINCT userId) AS users,
  COUNT(DISTINCT anonymousId) AS anonymous_visitors,
  COUNT(*) AS exposures,
  MIN(timestamp) AS first_exposure,
  MAX(timestamp) AS last_exposure
FROM experiment_viewed
GROUP BY experimentId, variationId
ORDER BY experimentId, variationId
