-- One batch of identity resolution, run in order inside ONE transaction by
-- workbench.events.identities ({schema} is the validated events.schema; :now and :batch_size are
-- bound). The outcome is a function of the set of events only, so resolving batch by batch gives
-- the same profiles as one pass over everything:
--   * every user id has exactly one profile, and an event with a user id belongs to it;
--   * an anonymous id seen with a user id belongs to the user it was FIRST seen with (earliest
--     occurred_at, then smallest user id): its anonymous-only events follow it there;
--   * an anonymous id never seen with a user id has a profile of its own.
-- Two user ids are never merged (user id wins), so the identifier graph's components are stars
-- around one user id and the components are found by one grouped pass, not an iteration.

-- The oldest unassociated events (events with neither id can never be associated: rule 3).
CREATE TEMP TABLE resolve_batch AS
SELECT id, user_id, anonymous_id, occurred_at
FROM {schema}.events
WHERE profile_id IS NULL AND (user_id IS NOT NULL OR anonymous_id IS NOT NULL)
ORDER BY occurred_at, id
LIMIT :batch_size;

-- User ids seen for the first time get a profile each.
CREATE TEMP TABLE resolve_new_users AS
SELECT u.user_id, 'pro_' || CAST(gen_random_uuid() AS TEXT) AS profile_id
FROM (SELECT DISTINCT user_id FROM resolve_batch WHERE user_id IS NOT NULL) u
WHERE NOT EXISTS (
  SELECT 1 FROM {schema}.profile_identities i WHERE i.kind = 'user_id' AND i.value = u.user_id);

INSERT INTO {schema}.profiles (id, user_id, anonymous_id, created_at, updated_at)
SELECT profile_id, user_id, NULL, :now, :now FROM resolve_new_users;

INSERT INTO {schema}.profile_identities (kind, value, profile_id, linked_user_id, linked_at, updated_at)
SELECT 'user_id', user_id, profile_id, NULL, NULL, :now FROM resolve_new_users;

-- Anonymous ids whose owner is decided by this batch: never linked before, or linked later than here.
CREATE TEMP TABLE resolve_relinked AS
SELECT l.anonymous_id, l.user_id, l.occurred_at, owner.profile_id AS new_profile_id,
       i.profile_id AS old_profile_id, i.linked_user_id AS old_user_id
FROM (
  SELECT anonymous_id, user_id, occurred_at,
         row_number() OVER (PARTITION BY anonymous_id ORDER BY occurred_at, user_id) AS link_order
  FROM resolve_batch
  WHERE anonymous_id IS NOT NULL AND user_id IS NOT NULL
) l
JOIN {schema}.profile_identities owner ON owner.kind = 'user_id' AND owner.value = l.user_id
LEFT JOIN {schema}.profile_identities i ON i.kind = 'anonymous_id' AND i.value = l.anonymous_id
WHERE l.link_order = 1
  AND (i.value IS NULL OR i.linked_user_id IS NULL OR l.occurred_at < i.linked_at
       OR (l.occurred_at = i.linked_at AND l.user_id < i.linked_user_id));

-- The merge log: anonymous profiles about to be merged into their user's profile, with what
-- each side held before this batch.
CREATE TEMP TABLE resolve_held AS
SELECT profile_id, count(*) AS events
FROM {schema}.events
WHERE profile_id IN (SELECT new_profile_id FROM resolve_relinked UNION SELECT old_profile_id FROM resolve_relinked)
GROUP BY profile_id;

INSERT INTO {schema}.profile_merges (id, survivor_id, merged_id, survivor_user_id, survivor_anonymous_id,
  survivor_events, merged_user_id, merged_anonymous_id, merged_events, merged_at)
SELECT 'mrg_' || CAST(gen_random_uuid() AS TEXT), r.new_profile_id, r.old_profile_id, s.user_id, s.anonymous_id,
       COALESCE(hs.events, 0), m.user_id, m.anonymous_id, COALESCE(hm.events, 0), :now
FROM resolve_relinked r
JOIN {schema}.profiles m ON m.id = r.old_profile_id
JOIN {schema}.profiles s ON s.id = r.new_profile_id
LEFT JOIN resolve_held hs ON hs.profile_id = r.new_profile_id
LEFT JOIN resolve_held hm ON hm.profile_id = r.old_profile_id
WHERE r.old_user_id IS NULL;

-- Anonymous-only events already associated follow their anonymous id to its (new) owner.
UPDATE {schema}.events
SET profile_id = r.new_profile_id, profile_associated_at = :now, updated_at = :now
FROM resolve_relinked r
WHERE {schema}.events.anonymous_id = r.anonymous_id AND {schema}.events.user_id IS NULL
  AND {schema}.events.profile_id IS NOT NULL AND {schema}.events.profile_id <> r.new_profile_id;

UPDATE {schema}.profile_identities
SET profile_id = r.new_profile_id, linked_user_id = r.user_id, linked_at = r.occurred_at, updated_at = :now
FROM resolve_relinked r
WHERE {schema}.profile_identities.kind = 'anonymous_id' AND {schema}.profile_identities.value = r.anonymous_id;

INSERT INTO {schema}.profile_identities (kind, value, profile_id, linked_user_id, linked_at, updated_at)
SELECT 'anonymous_id', anonymous_id, new_profile_id, user_id, occurred_at, :now
FROM resolve_relinked WHERE old_profile_id IS NULL;

DELETE FROM {schema}.profiles
WHERE id IN (SELECT old_profile_id FROM resolve_relinked WHERE old_user_id IS NULL AND old_profile_id IS NOT NULL);

-- A user's profile shows its first linked anonymous id (earliest link, then smallest id).
UPDATE {schema}.profiles
SET updated_at = :now, anonymous_id = (
  SELECT min(i.value) FROM {schema}.profile_identities i
  WHERE i.profile_id = {schema}.profiles.id AND i.kind = 'anonymous_id'
    AND i.linked_at = (SELECT min(j.linked_at) FROM {schema}.profile_identities j
                       WHERE j.profile_id = {schema}.profiles.id AND j.kind = 'anonymous_id'))
WHERE user_id IS NOT NULL
  AND id IN (SELECT new_profile_id FROM resolve_relinked UNION SELECT old_profile_id FROM resolve_relinked);

-- Anonymous ids seen for the first time and never with a user id get a profile each.
CREATE TEMP TABLE resolve_new_anonymous AS
SELECT a.anonymous_id, 'pro_' || CAST(gen_random_uuid() AS TEXT) AS profile_id
FROM (SELECT DISTINCT anonymous_id FROM resolve_batch WHERE anonymous_id IS NOT NULL) a
WHERE NOT EXISTS (
  SELECT 1 FROM {schema}.profile_identities i WHERE i.kind = 'anonymous_id' AND i.value = a.anonymous_id);

INSERT INTO {schema}.profiles (id, user_id, anonymous_id, created_at, updated_at)
SELECT profile_id, NULL, anonymous_id, :now, :now FROM resolve_new_anonymous;

INSERT INTO {schema}.profile_identities (kind, value, profile_id, linked_user_id, linked_at, updated_at)
SELECT 'anonymous_id', anonymous_id, profile_id, NULL, NULL, :now FROM resolve_new_anonymous;

-- Finally the batch itself: user id wins, else the anonymous id's profile.
CREATE TEMP TABLE resolve_assigned AS
SELECT b.id, COALESCE(u.profile_id, a.profile_id) AS profile_id
FROM resolve_batch b
LEFT JOIN {schema}.profile_identities u ON u.kind = 'user_id' AND u.value = b.user_id
LEFT JOIN {schema}.profile_identities a ON a.kind = 'anonymous_id' AND a.value = b.anonymous_id;

UPDATE {schema}.events
SET profile_id = s.profile_id, profile_associated_at = :now, updated_at = :now
FROM resolve_assigned s
WHERE {schema}.events.id = s.id;
