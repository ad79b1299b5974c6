-- Events sharing a local_uuid (the production unique index forbids them; copies made without
-- indexes, e.g. from CSV dumps, may hold some).
SELECT e.id, e.local_uuid, e.type, e.created_at
FROM event e
WHERE e.local_uuid IN (SELECT local_uuid FROM event GROUP BY local_uuid HAVING count(*) > 1)
