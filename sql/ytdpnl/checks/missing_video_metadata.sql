-- Videos shown in some list that have no video_metadata row (id = video.id).
SELECT vd.id, vd.youtube_id, vd.url, count(*) AS n_list_items
FROM video vd
INNER JOIN video_list_item v ON v.video_id = vd.id
LEFT JOIN video_metadata m ON m.youtube_id = vd.youtube_id
WHERE m.id IS NULL
GROUP BY vd.id, vd.youtube_id, vd.url
