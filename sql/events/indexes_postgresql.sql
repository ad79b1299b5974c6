-- Indexes of the event store created on PostgreSQL only (see schema.sql for why not on DuckDB).
CREATE INDEX events_profile_id ON events (profile_id);
