-- The newest page view: the end of the data window.
SELECT MAX(timestamp) AS last_timestamp FROM pages
