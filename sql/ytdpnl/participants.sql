-- The participants (GET /api/participants/{page} lists them page by page), in id order, with every
-- column production's Participant entity sends.
SELECT p.id, p.code, CAST(p.arm AS text) AS arm, p.phase, p.is_paid, p.extension_installed, p.extension_activated_at,
       p.channel_source_id, p.pos_in_channel_source, p.pos_in_channel_source_last_updated_at,
       p.created_at, p.updated_at
FROM participant p
WHERE (:all_codes OR p.code IN :codes)
ORDER BY p.id
