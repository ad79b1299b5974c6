-- Lists (event, list_type) whose positions are not exactly 0, 1, …, n-1 (id = the event's id).
SELECT v.event_id AS id, CAST(v.list_type AS text) AS list_type, count(*) AS n_items,
       min(v.position) AS min_position, max(v.position) AS max_position, count(DISTINCT v.position) AS n_positions
FROM video_list_item v
GROUP BY v.event_id, v.list_type
HAVING min(v.position) <> 0 OR max(v.position) <> count(*) - 1 OR count(DISTINCT v.position) <> count(*)
