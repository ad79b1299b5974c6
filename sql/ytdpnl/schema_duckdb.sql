-- The study's tables (seed 002) for the embedded DuckDB default: the same tables, columns, enum
-- types (lowercase names), primary keys, unique constraints and checks as schema_postgresql.sql.
-- What DuckDB cannot express, and how it is handled:
--   * serial ids: plain INTEGER PRIMARY KEY; the generator writes every id itself.
--   * foreign keys: left out (DuckDB has no ON DELETE CASCADE / SET NULL and checks each bulk row);
--     the sanity checks look for orphans instead.
--   * partial unique indexes (one current experiment_config, transition_setting,
--     channel_rotation_speed_setting, one default channel_source): not expressible; the generator
--     writes one current row each. voucher.participant_id is a plain UNIQUE (NULLs are distinct).
--   * secondary (non-unique) indexes: left out; DuckDB scans columnar data instead.
CREATE TYPE experimentarm AS ENUM ('treatment', 'control');
CREATE TYPE eventtype AS ENUM ('PAGE_VIEW', 'RECOMMENDATIONS_SHOWN', 'PERSONALIZED_CLICKED', 'NON_PERSONALIZED_CLICKED', 'MIXED_CLICKED', 'WATCH_TIME', 'SESSION_END', 'PHASE_TRANSITION', 'EXTENSION_INSTALLED', 'EXTENSION_ACTIVATED', 'HOME_SHOWN', 'HOME_INJECTED_TILE_CLICKED');
CREATE TYPE listtype AS ENUM ('PERSONALIZED', 'NON_PERSONALIZED', 'SHOWN', 'HOME_DEFAULT', 'HOME_REPLACEMENT_SOURCE', 'HOME_SHOWN');
CREATE TYPE videotype AS ENUM ('PERSONALIZED', 'NON_PERSONALIZED', 'MIXED');
CREATE TYPE transitionreason AS ENUM ('AUTOMATIC', 'FORCED');
CREATE TYPE operatortype AS ENUM ('ANY', 'ALL');

CREATE TABLE admin (
  id INTEGER PRIMARY KEY,
  name text NOT NULL,
  email text NOT NULL,
  password text NOT NULL,
  created_at timestamp NOT NULL DEFAULT now(),
  updated_at timestamp NOT NULL DEFAULT now(),
  CONSTRAINT admin_email_key UNIQUE (email)
);

CREATE TABLE channel_source (
  id INTEGER PRIMARY KEY,
  title text NULL,
  is_default boolean NOT NULL DEFAULT false,
  created_at timestamp NOT NULL DEFAULT now(),
  updated_at timestamp NOT NULL DEFAULT now()
);

CREATE TABLE channel_source_item (
  id INTEGER PRIMARY KEY,
  channel_source_id integer NOT NULL,
  position integer NOT NULL,
  youtube_channel_id text NOT NULL,
  created_at timestamp NOT NULL DEFAULT now(),
  updated_at timestamp NOT NULL DEFAULT now()
);

CREATE TABLE channel_rotation_speed_setting (
  id INTEGER PRIMARY KEY,
  speed_hours real NOT NULL,
  is_current boolean NOT NULL DEFAULT false,
  created_at timestamp NOT NULL DEFAULT now(),
  updated_at timestamp NOT NULL DEFAULT now()
);

CREATE TABLE unusable_channel (
  id INTEGER PRIMARY KEY,
  youtube_channel_id text NOT NULL,
  created_at timestamp NOT NULL DEFAULT now(),
  updated_at timestamp NOT NULL DEFAULT now(),
  CONSTRAINT unusable_channel_youtube_channel_id_key UNIQUE (youtube_channel_id)
);

CREATE TABLE participant (
  id INTEGER PRIMARY KEY,
  code text NOT NULL,
  arm experimentarm NOT NULL,
  phase smallint NOT NULL DEFAULT 0,
  extension_installed boolean NOT NULL DEFAULT false,
  extension_activated_at timestamp NULL,
  is_paid boolean NOT NULL DEFAULT false,
  channel_source_id integer NULL,
  pos_in_channel_source integer NOT NULL DEFAULT 0,
  pos_in_channel_source_last_updated_at timestamp NOT NULL DEFAULT now(),
  created_at timestamp NOT NULL DEFAULT now(),
  updated_at timestamp NOT NULL DEFAULT now(),
  CONSTRAINT participant_code_key UNIQUE (code)
);

CREATE TABLE experiment_config (
  id INTEGER PRIMARY KEY,
  comment text NOT NULL DEFAULT '',
  non_personalized_probability double precision NOT NULL,
  is_current boolean NOT NULL,
  admin_id integer NOT NULL,
  created_at timestamp NOT NULL DEFAULT now(),
  updated_at timestamp NOT NULL DEFAULT now()
);

CREATE TABLE session (
  id INTEGER PRIMARY KEY,
  uuid uuid NOT NULL DEFAULT gen_random_uuid(),
  participant_code text NOT NULL,
  created_at timestamp NOT NULL DEFAULT now(),
  updated_at timestamp NOT NULL DEFAULT now(),
  CONSTRAINT session_uuid_key UNIQUE (uuid)
);

CREATE TABLE event (
  id INTEGER PRIMARY KEY,
  session_uuid uuid NOT NULL,
  experiment_config_id integer NOT NULL,
  arm experimentarm NOT NULL,
  type eventtype NOT NULL,
  url text NOT NULL,
  local_uuid text NOT NULL DEFAULT gen_random_uuid(),
  context text NULL,
  extension_version text NULL,
  phase smallint NOT NULL DEFAULT 0,
  tab_active boolean NULL,
  local_zero_hour timestamp NULL,
  extra json NULL,
  created_at timestamp NOT NULL DEFAULT now(),
  updated_at timestamp NOT NULL DEFAULT now(),
  CONSTRAINT event_local_uuid_key UNIQUE (local_uuid)
);

CREATE TABLE watch_time (
  event_id integer PRIMARY KEY,
  seconds_watched double precision NOT NULL
);

CREATE TABLE video (
  id INTEGER PRIMARY KEY,
  title text NOT NULL,
  url text NOT NULL,
  youtube_id text NOT NULL,
  metadata_available boolean NULL,
  created_at timestamp NOT NULL DEFAULT now(),
  updated_at timestamp NOT NULL DEFAULT now(),
  CONSTRAINT video_youtube_id_key UNIQUE (youtube_id),
  CONSTRAINT video_url_key UNIQUE (url)
);

CREATE TABLE video_list_item (
  id INTEGER PRIMARY KEY,
  event_id integer NOT NULL,
  video_id integer NOT NULL,
  list_type listtype NOT NULL,
  video_type videotype NOT NULL,
  position integer NOT NULL DEFAULT 0,
  created_at timestamp NOT NULL DEFAULT now(),
  updated_at timestamp NOT NULL DEFAULT now()
);

CREATE TABLE video_metadata (
  id INTEGER PRIMARY KEY,
  youtube_id text NOT NULL,
  youtube_category_id text NOT NULL,
  category_title text NOT NULL,
  youtube_channel_id text NOT NULL,
  video_title text NOT NULL,
  video_description text NULL,
  published_at timestamp NOT NULL,
  view_count bigint NOT NULL,
  like_count bigint NOT NULL,
  comment_count bigint NOT NULL,
  tags text[] NOT NULL,
  topic_categories text[] NOT NULL,
  created_at timestamp NOT NULL DEFAULT now(),
  updated_at timestamp NOT NULL DEFAULT now(),
  CONSTRAINT video_metadata_youtube_id_key UNIQUE (youtube_id)
);

CREATE TABLE daily_activity_time (
  id INTEGER PRIMARY KEY,
  participant_id integer NOT NULL,
  pages_viewed integer NOT NULL,
  video_pages_viewed integer NOT NULL,
  video_time_viewed_seconds real NOT NULL,
  time_spent_on_youtube_seconds real NOT NULL,
  sidebar_recommendations_clicked integer NOT NULL DEFAULT 0,
  created_at date NOT NULL DEFAULT CURRENT_DATE,
  updated_at timestamp NOT NULL DEFAULT now(),
  CONSTRAINT daily_activity_time_participant_id_created_at_key UNIQUE (participant_id, created_at)
);

CREATE TABLE transition_setting (
  id INTEGER PRIMARY KEY,
  from_phase smallint NOT NULL,
  to_phase smallint NOT NULL,
  is_current boolean NOT NULL,
  operator operatortype NOT NULL DEFAULT 'ANY',
  min_pages_viewed integer NOT NULL,
  min_video_pages_viewed integer NOT NULL,
  min_video_time_viewed_seconds real NOT NULL,
  min_time_spent_on_youtube_seconds real NOT NULL,
  min_sidebar_recommendations_clicked integer NOT NULL,
  min_days integer NOT NULL,
  created_at timestamp NOT NULL DEFAULT now(),
  updated_at timestamp NOT NULL DEFAULT now()
);

CREATE TABLE transition_event (
  id INTEGER PRIMARY KEY,
  event_id integer NULL,
  transition_setting_id integer NULL,
  participant_id integer NOT NULL,
  reason transitionreason NOT NULL,
  from_phase smallint NOT NULL,
  to_phase smallint NOT NULL,
  pages_viewed integer NOT NULL,
  video_pages_viewed integer NOT NULL,
  video_time_viewed_seconds real NOT NULL,
  time_spent_on_youtube_seconds real NOT NULL,
  sidebar_recommendations_clicked integer NOT NULL,
  num_days integer NOT NULL,
  created_at timestamp NOT NULL DEFAULT now(),
  updated_at timestamp NOT NULL DEFAULT now(),
  CONSTRAINT transition_event_reason_check CHECK (
    (event_id IS NULL AND transition_setting_id IS NULL AND reason = 'FORCED')
    OR (event_id IS NOT NULL AND transition_setting_id IS NOT NULL AND reason = 'AUTOMATIC'))
);

CREATE TABLE voucher (
  id INTEGER PRIMARY KEY,
  participant_id integer NULL,
  voucher_code text NOT NULL,
  delivered_at timestamp NULL,
  created_at timestamp NOT NULL DEFAULT now(),
  updated_at timestamp NOT NULL DEFAULT now(),
  CONSTRAINT voucher_voucher_code_key UNIQUE (voucher_code),
  CONSTRAINT voucher_participant_id_key UNIQUE (participant_id),
  CONSTRAINT voucher_delivered_check CHECK ((participant_id IS NULL) = (delivered_at IS NULL))
);
