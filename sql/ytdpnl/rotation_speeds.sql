-- The history of the channel rotation speed (production keeps every setting): one row per
-- channel_rotation_speed_setting in the order they were set, with when the next one replaced it
-- (NULL for the latest). No row: production rotates every 24 hours.
SELECT id, CAST(speed_hours AS double precision) AS speed_hours, is_current,
       created_at AS set_at,
       lead(created_at) OVER (ORDER BY created_at, id) AS replaced_at
FROM channel_rotation_speed_setting
ORDER BY created_at, id
