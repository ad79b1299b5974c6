-- Events whose arm differs from their participant's arm, or whose phase differs from the phase
-- the participant's transition_event history gives at the event's time (the latest transition
-- created at or before the event; phase 0 before any). The database keeps no history of arm
-- changes, so an event stored before a participant was moved to another arm is reported too.
WITH spans AS (
  SELECT te.participant_id, te.to_phase, te.created_at AS since,
         lead(te.created_at) OVER (PARTITION BY te.participant_id ORDER BY te.created_at, te.id) AS until
  FROM transition_event te
),
events AS (
  SELECT e.id, e.type, e.arm, e.phase, e.created_at, p.id AS participant_id, p.code, p.arm AS participant_arm
  FROM event e
  INNER JOIN session s ON s.uuid = e.session_uuid
  INNER JOIN participant p ON p.code = s.participant_code
),
expected AS (
  SELECT ev.*, coalesce(sp.to_phase, 0) AS expected_phase
  FROM events ev
  LEFT JOIN spans sp ON sp.participant_id = ev.participant_id AND ev.created_at >= sp.since
       AND (sp.until IS NULL OR ev.created_at < sp.until)
)
SELECT id, type, code, created_at, CAST(arm AS text) AS arm, CAST(participant_arm AS text) AS participant_arm, phase, expected_phase
FROM expected
WHERE arm <> participant_arm OR phase <> expected_phase
