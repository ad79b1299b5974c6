-- GrowthBook's sample-data tables (seed 000), as its own create.sql names them, with real types.
-- Identifiers are unquoted on purpose: PostgreSQL folds them to lower case, so the seed's own SQL
-- (`SELECT userId as user_id ... FROM experiment_viewed`) runs unchanged on PostgreSQL, DuckDB and
-- Spark SQL, which all resolve unquoted identifiers case-insensitively.
CREATE TABLE experiment_viewed (
  userId TEXT,
  anonymousId TEXT,
  sessionId TEXT,
  browser TEXT,
  country TEXT,
  timestamp TIMESTAMP,
  experimentId TEXT,
  variationId TEXT
);

CREATE TABLE orders (
  userId TEXT,
  anonymousId TEXT,
  sessionId TEXT,
  browser TEXT,
  country TEXT,
  timestamp TIMESTAMP,
  qty INTEGER,
  amount INTEGER
);

CREATE TABLE pages (
  userId TEXT,
  anonymousId TEXT,
  sessionId TEXT,
  browser TEXT,
  country TEXT,
  timestamp TIMESTAMP,
  path TEXT
);

CREATE TABLE sessions (
  userId TEXT,
  anonymousId TEXT,
  sessionId TEXT,
  browser TEXT,
  country TEXT,
  sessionStart TIMESTAMP,
  pages INTEGER,
  duration INTEGER
);

CREATE TABLE events (
  value INTEGER,
  userId TEXT,
  anonymousId TEXT,
  sessionId TEXT,
  browser TEXT,
  country TEXT,
  timestamp TIMESTAMP,
  event TEXT
);
