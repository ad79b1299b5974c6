-- Cohort retention: a unit's cohort is the period (day, week or month) of its first event; it is retained in period
-- k when it has an activity event in the k-th period after its cohort's. Units per cohort and
-- period (0 up to the periods parameter, excluded), with the cohort's size.
WITH ev AS (
{events}
),
cohorts AS (
  SELECT unit, date_trunc('{grain}', MIN(ts)) AS cohort
  FROM ev WHERE unit IS NOT NULL
  GROUP BY unit
),
active AS (
  SELECT DISTINCT unit, date_trunc('{grain}', ts) AS active_period
  FROM ev WHERE unit IS NOT NULL AND {activity_filter}
),
retained AS (
  SELECT c.cohort, {period_index} AS period, COUNT(*) AS units
  FROM cohorts c JOIN active a ON a.unit = c.unit
  GROUP BY c.cohort, {period_index}
),
sizes AS (
  SELECT cohort, COUNT(*) AS cohort_units FROM cohorts GROUP BY cohort
)
SELECT s.cohort, s.cohort_units, r.period, r.units
FROM sizes s
LEFT JOIN retained r ON r.cohort = s.cohort AND r.period >= 0 AND r.period < :periods
ORDER BY s.cohort, r.period
