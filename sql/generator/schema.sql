-- What the synthetic data generator planted: one row per variation of each planted experiment.
-- true_relative_effect multiplies the probability named in metric, p * (1 + effect), never capped,
-- for a user from their first exposure on; weight is the share of users assigned the variation.
CREATE TABLE generator_truth (
  experiment_id TEXT,
  variation_id TEXT,
  weight DOUBLE PRECISION,
  exposed_on TEXT,
  metric TEXT,
  true_relative_effect DOUBLE PRECISION,
  notes TEXT
);
