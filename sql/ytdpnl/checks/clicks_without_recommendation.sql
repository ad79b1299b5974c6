-- Clicks with no list shown before them on the page they came from: a sidebar click needs a
-- RECOMMENDATIONS_SHOWN, a home tile click a HOME_SHOWN, in the same session, whose url is the
-- click's context, created at or before the click.
SELECT c.id, c.type, CAST(c.session_uuid AS text) AS session_uuid, c.url, c.context, c.created_at
FROM event c
WHERE c.type IN ('PERSONALIZED_CLICKED', 'NON_PERSONALIZED_CLICKED', 'MIXED_CLICKED', 'HOME_INJECTED_TILE_CLICKED')
  AND NOT EXISTS (
    SELECT 1 FROM event r
    WHERE r.session_uuid = c.session_uuid AND r.url = c.context AND r.created_at <= c.created_at
      AND ((c.type = 'HOME_INJECTED_TILE_CLICKED' AND r.type = 'HOME_SHOWN')
        OR (c.type <> 'HOME_INJECTED_TILE_CLICKED' AND r.type = 'RECOMMENDATIONS_SHOWN')))
