-- The YouTube personalization study's tables (seed 002) as its production database has them after
-- migrations 1 to 55 (see /work/shared/reference/ytdpnl-schema.md): lowercase enum types, serial
-- ids, timestamps without time zone (UTC), partial unique indexes and checks. The statements are
-- unqualified: the generator runs them with `search_path` set to the target schema, so a real copy
-- of the study database (tables in `public`) and the workbench's own copy (schema `ytdpnl`) read
-- the same. `admin` is reduced to what `experiment_config.admin_id` needs; `token`, `request_log`,
-- `youtube_request_latency`, `video_category`, `reset_password_token` and `migrations` carry no
-- study data and are left out.
CREATE TYPE experimentarm AS ENUM ('treatment', 'control');
CREATE TYPE eventtype AS ENUM ('PAGE_VIEW', 'RECOMMENDATIONS_SHOWN', 'PERSONALIZED_CLICKED', 'NON_PERSONALIZED_CLICKED', 'MIXED_CLICKED', 'WATCH_TIME', 'SESSION_END', 'PHASE_TRANSITION', 'EXTENSION_INSTALLED', 'EXTENSION_ACTIVATED', 'HOME_SHOWN', 'HOME_INJECTED_TILE_CLICKED');
CREATE TYPE listtype AS ENUM ('PERSONALIZED', 'NON_PERSONALIZED', 'SHOWN', 'HOME_DEFAULT', 'HOME_REPLACEMENT_SOURCE', 'HOME_SHOWN');
CREATE TYPE videotype AS ENUM ('PERSONALIZED', 'NON_PERSONALIZED', 'MIXED');
CREATE TYPE transitionreason AS ENUM ('AUTOMATIC', 'FORCED');
CREATE TYPE operatortype AS ENUM ('ANY', 'ALL');

CREATE TABLE admin (
  id serial PRIMARY KEY,
  name text NOT NULL,
  email text NOT NULL,
  password text NOT NULL,
  created_at timestamp NOT NULL DEFAULT now(),
  updated_at timestamp NOT NULL DEFAULT now(),
  CONSTRAINT admin_email_key UNIQUE (email)
);

CREATE TABLE channel_source (
  id serial PRIMARY KEY,
  title text NULL,
  is_default boolean NOT NULL DEFAULT false,
  created_at timestamp NOT NULL DEFAULT now(),
  updated_at timestamp NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX channel_source_is_default_idx ON channel_source (is_default) WHERE is_default;

CREATE TABLE channel_source_item (
  id serial PRIMARY KEY,
  channel_source_id integer NOT NULL REFERENCES channel_source (id) ON DELETE CASCADE,
  position integer NOT NULL,
  youtube_channel_id text NOT NULL,
  created_at timestamp NOT NULL DEFAULT now(),
  updated_at timestamp NOT NULL DEFAULT now()
);

CREATE TABLE channel_rotation_speed_setting (
  id serial PRIMARY KEY,
  speed_hours real NOT NULL,
  is_current boolean NOT NULL DEFAULT false,
  created_at timestamp NOT NULL DEFAULT now(),
  updated_at timestamp NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX channel_rotation_speed_setting_is_current_idx ON channel_rotation_speed_setting (is_current) WHERE is_current;

CREATE TABLE unusable_channel (
  id serial PRIMARY KEY,
  youtube_channel_id text NOT NULL,
  created_at timestamp NOT NULL DEFAULT now(),
  updated_at timestamp NOT NULL DEFAULT now(),
  CONSTRAINT unusable_channel_youtube_channel_id_key UNIQUE (youtube_channel_id)
);

CREATE TABLE participant (
  id serial PRIMARY KEY,
  code text NOT NULL,
  arm experimentarm NOT NULL,
  phase smallint NOT NULL DEFAULT 0,
  extension_installed boolean NOT NULL DEFAULT false,
  extension_activated_at timestamp NULL,
  is_paid boolean NOT NULL DEFAULT false,
  channel_source_id integer NULL REFERENCES channel_source (id) ON DELETE SET NULL,
  pos_in_channel_source integer NOT NULL DEFAULT 0,
  pos_in_channel_source_last_updated_at timestamp NOT NULL DEFAULT now(),
  created_at timestamp NOT NULL DEFAULT now(),
  updated_at timestamp NOT NULL DEFAULT now(),
  CONSTRAINT participant_code_key UNIQUE (code)
);
CREATE INDEX participant_arm_idx ON participant (arm);

CREATE TABLE experiment_config (
  id serial PRIMARY KEY,
  comment text NOT NULL DEFAULT '',
  non_personalized_probability double precision NOT NULL,
  is_current boolean NOT NULL,
  admin_id integer NOT NULL REFERENCES admin (id),
  created_at timestamp NOT NULL DEFAULT now(),
  updated_at timestamp NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX experiment_config_is_current_idx ON experiment_config (is_current) WHERE is_current = true;

CREATE TABLE session (
  id serial PRIMARY KEY,
  uuid uuid NOT NULL DEFAULT gen_random_uuid(),
  participant_code text NOT NULL REFERENCES participant (code) ON DELETE CASCADE,
  created_at timestamp NOT NULL DEFAULT now(),
  updated_at timestamp NOT NULL DEFAULT now(),
  CONSTRAINT session_uuid_key UNIQUE (uuid)
);
CREATE INDEX session_participant_code_idx ON session (participant_code);

CREATE TABLE event (
  id serial PRIMARY KEY,
  session_uuid uuid NOT NULL REFERENCES session (uuid) ON DELETE CASCADE,
  experiment_config_id integer NOT NULL REFERENCES experiment_config (id) ON DELETE CASCADE,
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
CREATE INDEX event_session_uuid_idx ON event (session_uuid);
CREATE INDEX event_experiment_config_id_idx ON event (experiment_config_id);
CREATE INDEX event_created_at_idx ON event (created_at);

CREATE TABLE watch_time (
  event_id integer PRIMARY KEY REFERENCES event (id) ON DELETE CASCADE,
  seconds_watched double precision NOT NULL
);
CREATE INDEX watch_time_seconds_watched_idx ON watch_time (seconds_watched);

CREATE TABLE video (
  id serial PRIMARY KEY,
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
  id serial PRIMARY KEY,
  event_id integer NOT NULL REFERENCES event (id) ON DELETE CASCADE,
  video_id integer NOT NULL REFERENCES video (id) ON DELETE CASCADE,
  list_type listtype NOT NULL,
  video_type videotype NOT NULL,
  position integer NOT NULL DEFAULT 0,
  created_at timestamp NOT NULL DEFAULT now(),
  updated_at timestamp NOT NULL DEFAULT now()
);

CREATE TABLE video_metadata (
  id serial PRIMARY KEY,
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
  id serial PRIMARY KEY,
  participant_id integer NOT NULL REFERENCES participant (id) ON DELETE CASCADE,
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
  id serial PRIMARY KEY,
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
CREATE UNIQUE INDEX transition_setting_current_idx ON transition_setting (from_phase, to_phase, is_current) WHERE is_current;

CREATE TABLE transition_event (
  id serial PRIMARY KEY,
  event_id integer NULL REFERENCES event (id),
  transition_setting_id integer NULL REFERENCES transition_setting (id),
  participant_id integer NOT NULL REFERENCES participant (id),
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
  id serial PRIMARY KEY,
  participant_id integer NULL REFERENCES participant (id),
  voucher_code text NOT NULL,
  delivered_at timestamp NULL,
  created_at timestamp NOT NULL DEFAULT now(),
  updated_at timestamp NOT NULL DEFAULT now(),
  CONSTRAINT voucher_voucher_code_key UNIQUE (voucher_code),
  CONSTRAINT voucher_delivered_check CHECK ((participant_id IS NULL) = (delivered_at IS NULL))
);
CREATE UNIQUE INDEX voucher_participant_id_idx ON voucher (participant_id) WHERE participant_id IS NOT NULL;
