-- The seed's participant overview, keyed on code (participant.email was dropped): sessions,
-- first and last session, distinct page urls viewed, pages per session and clicks by kind, for
-- participants with at least :min_pages distinct pages. Sessions are those created in
-- [:start, :end); pages_per_session is a real division (the seed's integer division truncated).
-- One pass over the events with conditional counts replaces the seed's three self-joins.
SELECT p.id AS participant_id,
       p.code,
       p.arm,
       count(DISTINCT s.id) AS n_sessions,
       min(s.created_at) AS first_session,
       max(s.created_at) AS last_session,
       count(DISTINCT CASE WHEN e.type = 'PAGE_VIEW' THEN e.url END) AS n_pages_viewed,
       CAST(count(DISTINCT CASE WHEN e.type = 'PAGE_VIEW' THEN e.url END) AS double precision) / count(DISTINCT s.id) AS pages_per_session,
       count(DISTINCT CASE WHEN e.type = 'NON_PERSONALIZED_CLICKED' THEN e.id END) AS n_non_personalized_clicked,
       count(DISTINCT CASE WHEN e.type = 'PERSONALIZED_CLICKED' THEN e.id END) AS n_personalized_clicked,
       count(DISTINCT CASE WHEN e.type = 'MIXED_CLICKED' THEN e.id END) AS n_mixed_clicked,
       count(DISTINCT CASE WHEN e.type = 'HOME_INJECTED_TILE_CLICKED' THEN e.id END) AS n_home_injected_tile_clicked
FROM participant p
INNER JOIN session s ON s.participant_code = p.code
LEFT JOIN event e ON e.session_uuid = s.uuid
WHERE s.created_at >= :start AND s.created_at < :end
  AND (:all_codes OR p.code IN :codes)
GROUP BY p.id, p.code, p.arm
HAVING count(DISTINCT CASE WHEN e.type = 'PAGE_VIEW' THEN e.url END) >= :min_pages
ORDER BY n_pages_viewed DESC, p.id
