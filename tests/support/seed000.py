"""Seed 000's own SQL, verbatim, for tests that prove it runs unchanged on our tables."""

ASSIGNMENT_SQL = """
SELECT
  userId as user_id,
  timestamp as timestamp,
  experimentId as experiment_id,
  variationId as variation_id,
  browser,
  country
FROM
  experiment_viewed
"""
