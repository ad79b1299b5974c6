-- The participants (GET /api/participants/{page} lists them page by page), in id order.
SELECT p.id, p.code, CAST(p.arm AS text) AS arm, p.phase, p.is_paid, p.extension_activated_at, p.created_at
FROM participant p
WHERE (:all_codes OR p.code IN :codes)
ORDER BY p.id
