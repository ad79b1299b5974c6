-- The home-page experiment per arm and phase (event.arm and event.phase, as stored with each
-- event): one unit is a participant with at least one event of that arm and phase created in
-- [:start, :end); phase 'all' takes the participant's events of that arm in every phase.
-- Per unit: home_shown counts HOME_SHOWN events; shown_tiles the items of their HOME_SHOWN lists;
-- a shown tile is a default tile when its video is in the same event's HOME_DEFAULT list, else a
-- replacement tile when it is in that event's HOME_REPLACEMENT_SOURCE list, else an other tile;
-- injected_clicks counts HOME_INJECTED_TILE_CLICKED events. Returned per arm and phase: the
-- units, units shown the home page at least once, and sums, sums of squares and the products the
-- ratio metrics need (docs/sufficient-statistics.md).
WITH events AS (
  SELECT p.id AS participant_id, CAST(e.arm AS text) AS arm, e.phase, e.id, CAST(e.type AS text) AS type
  FROM participant p
  INNER JOIN session s ON s.participant_code = p.code
  INNER JOIN event e ON e.session_uuid = s.uuid
  WHERE e.created_at >= :start AND e.created_at < :end
    AND (:all_codes OR p.code IN :codes)
),
listed AS (
  SELECT DISTINCT event_id, video_id, CAST(list_type AS text) AS list_type
  FROM video_list_item
  WHERE list_type IN ('HOME_DEFAULT', 'HOME_REPLACEMENT_SOURCE')
),
tiles AS (
  SELECT shown.event_id,
         count(*) AS shown_tiles,
         sum(CASE WHEN d.video_id IS NOT NULL THEN 1 ELSE 0 END) AS default_tiles,
         sum(CASE WHEN d.video_id IS NULL AND r.video_id IS NOT NULL THEN 1 ELSE 0 END) AS replacement_tiles
  FROM video_list_item shown
  LEFT JOIN listed d ON d.event_id = shown.event_id AND d.video_id = shown.video_id AND d.list_type = 'HOME_DEFAULT'
  LEFT JOIN listed r ON r.event_id = shown.event_id AND r.video_id = shown.video_id AND r.list_type = 'HOME_REPLACEMENT_SOURCE'
  WHERE shown.list_type = 'HOME_SHOWN'
  GROUP BY shown.event_id
),
per_unit AS (
  SELECT ev.participant_id, ev.arm,
         CASE WHEN GROUPING(ev.phase) = 1 THEN 'all' ELSE CAST(ev.phase AS text) END AS phase,
         CAST(sum(CASE WHEN ev.type = 'HOME_SHOWN' THEN 1 ELSE 0 END) AS double precision) AS home_shown,
         CAST(coalesce(sum(t.shown_tiles), 0) AS double precision) AS shown_tiles,
         CAST(coalesce(sum(t.default_tiles), 0) AS double precision) AS default_tiles,
         CAST(coalesce(sum(t.replacement_tiles), 0) AS double precision) AS replacement_tiles,
         CAST(sum(CASE WHEN ev.type = 'HOME_INJECTED_TILE_CLICKED' THEN 1 ELSE 0 END) AS double precision) AS injected_clicks
  FROM events ev
  LEFT JOIN tiles t ON t.event_id = ev.id AND ev.type = 'HOME_SHOWN'
  GROUP BY GROUPING SETS ((ev.participant_id, ev.arm, ev.phase), (ev.participant_id, ev.arm))
)
SELECT arm, phase,
       count(*) AS participants,
       sum(CASE WHEN home_shown > 0 THEN 1 ELSE 0 END) AS participants_shown_home,
       sum(home_shown) AS home_shown,
       sum(home_shown * home_shown) AS home_shown_squares,
       sum(shown_tiles) AS shown_tiles,
       sum(shown_tiles * shown_tiles) AS shown_tiles_squares,
       sum(default_tiles) AS default_tiles,
       sum(replacement_tiles) AS replacement_tiles,
       sum(replacement_tiles * replacement_tiles) AS replacement_tiles_squares,
       sum(replacement_tiles * shown_tiles) AS replacement_shown_tiles_product,
       sum(injected_clicks) AS injected_clicks,
       sum(injected_clicks * injected_clicks) AS injected_clicks_squares,
       sum(injected_clicks * home_shown) AS injected_clicks_home_shown_product
FROM per_unit
GROUP BY arm, phase
ORDER BY arm, phase
