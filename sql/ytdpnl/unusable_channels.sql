-- Channels the extension found unusable (production marks the channel a participant was on when
-- the extension forces a move to the next one), in the order they were marked, each with the
-- channel sources and positions that still list it (NULL when none does) and the treatment
-- participants currently at that position (a missing channel_source_id reads the default source).
WITH placed AS (
  SELECT coalesce(p.channel_source_id, (SELECT min(id) FROM channel_source WHERE is_default)) AS channel_source_id,
         p.pos_in_channel_source AS position
  FROM participant p
  WHERE p.arm = 'treatment' AND (:all_codes OR p.code IN :codes)
)
SELECT u.id, u.youtube_channel_id, u.created_at AS marked_at, i.channel_source_id, i.position,
       count(pl.position) AS participants_there
FROM unusable_channel u
LEFT JOIN channel_source_item i ON i.youtube_channel_id = u.youtube_channel_id
LEFT JOIN placed pl ON pl.channel_source_id = i.channel_source_id AND pl.position = i.position
GROUP BY u.id, u.youtube_channel_id, u.created_at, i.channel_source_id, i.position
ORDER BY u.created_at, u.id, i.channel_source_id, i.position
