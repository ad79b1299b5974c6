-- Monitoring figures for PAGE_VIEW events created in [:start, :end): the total (section
-- 'total'), per path type ('path_type': home, watch, search, channel, other) and the :top most
-- viewed urls ('url'), each with page views, share of all page views and active participants.
WITH views AS (
  SELECT p.id AS participant_id, e.url,
         CASE WHEN e.url LIKE '%/watch%' THEN 'watch'
              WHEN e.url LIKE '%/results%' THEN 'search'
              WHEN e.url LIKE '%/@%' OR e.url LIKE '%/channel/%' OR e.url LIKE '%/c/%' THEN 'channel'
              WHEN e.url LIKE '%youtube.com/' OR e.url LIKE '%youtube.com' THEN 'home'
              ELSE 'other' END AS path_type
  FROM event e
  INNER JOIN session s ON s.uuid = e.session_uuid
  INNER JOIN participant p ON p.code = s.participant_code
  WHERE e.type = 'PAGE_VIEW' AND e.created_at >= :start AND e.created_at < :end
    AND (:all_codes OR p.code IN :codes)
),
total AS (SELECT count(*) AS page_views FROM views),
by_key AS (
  SELECT 'total' AS section, 'all' AS key, count(*) AS page_views, count(DISTINCT participant_id) AS active_participants FROM views
  UNION ALL
  SELECT 'path_type', path_type, count(*), count(DISTINCT participant_id) FROM views GROUP BY path_type
  UNION ALL
  SELECT 'url', url, count(*), count(DISTINCT participant_id) FROM views GROUP BY url
),
ranked AS (
  SELECT b.*, row_number() OVER (PARTITION BY b.section ORDER BY b.page_views DESC, b.key) AS rank_in_section
  FROM by_key b
)
SELECT r.section, r.key, r.page_views,
       CASE WHEN t.page_views = 0 THEN NULL ELSE CAST(r.page_views AS double precision) / t.page_views END AS share,
       r.active_participants, r.rank_in_section
FROM ranked r CROSS JOIN total t
WHERE r.section <> 'url' OR r.rank_in_section <= :top
ORDER BY CASE r.section WHEN 'total' THEN 0 WHEN 'path_type' THEN 1 ELSE 2 END, r.rank_in_section
