-- Where the treatment participants stand in their channel sources at :as_of: one row per channel
-- source and position, for every item of a source and for any position a participant holds beyond
-- a source's items (youtube_channel_id NULL there: production answers "item not found").
-- A participant without channel_source_id reads the default source, as production does; control
-- participants get no channel. participants_due counts those in phase 0 or 1 whose position was
-- last moved at least speed_hours before :as_of (production's isPositionUpdateNeeded: they move on
-- when the extension next asks for their channel; a HOME_INJECTED_TILE_CLICKED moves them at once,
-- whatever the time); speed_hours
-- is the current channel_rotation_speed_setting, 24 when none is current. is_last marks a
-- source's last item: production never moves a participant past it.
WITH speed AS (
  SELECT coalesce(max(CASE WHEN is_current THEN CAST(speed_hours AS double precision) END), 24.0) AS speed_hours
  FROM channel_rotation_speed_setting
),
placed AS (
  SELECT coalesce(p.channel_source_id, (SELECT min(id) FROM channel_source WHERE is_default)) AS channel_source_id,
         p.pos_in_channel_source AS position,
         count(*) AS participants,
         sum(CASE WHEN p.phase <= 1
                       AND EXTRACT(EPOCH FROM (CAST(:as_of AS timestamp) - p.pos_in_channel_source_last_updated_at))
                           >= 3600 * sp.speed_hours THEN 1 ELSE 0 END) AS participants_due,
         min(p.pos_in_channel_source_last_updated_at) AS first_moved_at,
         max(p.pos_in_channel_source_last_updated_at) AS last_moved_at
  FROM participant p
  CROSS JOIN speed sp
  WHERE p.arm = 'treatment' AND (:all_codes OR p.code IN :codes)
  GROUP BY 1, 2
),
items AS (
  SELECT i.channel_source_id, i.position, i.youtube_channel_id,
         i.position = max(i.position) OVER (PARTITION BY i.channel_source_id) AS is_last
  FROM channel_source_item i
)
SELECT coalesce(i.channel_source_id, pl.channel_source_id) AS channel_source_id,
       cs.title, cs.is_default,
       coalesce(i.position, pl.position) AS position,
       i.youtube_channel_id, coalesce(i.is_last, false) AS is_last,
       u.created_at AS unusable_since,
       coalesce(pl.participants, 0) AS participants,
       coalesce(pl.participants_due, 0) AS participants_due,
       pl.first_moved_at, pl.last_moved_at,
       (SELECT speed_hours FROM speed) AS speed_hours
FROM items i
FULL OUTER JOIN placed pl ON pl.channel_source_id = i.channel_source_id AND pl.position = i.position
LEFT JOIN channel_source cs ON cs.id = coalesce(i.channel_source_id, pl.channel_source_id)
LEFT JOIN unusable_channel u ON u.youtube_channel_id = i.youtube_channel_id
ORDER BY channel_source_id, position
