-- The participants report (GET /api/participants-report): per participant its phase, extension
-- activation and the latest transition (by id) to phases 1, 2 and 0. As production's
-- participantsGetReport (src/server/api-2/participantsGetReport.ts), a transition's time is its
-- updated_at, not its created_at. Timestamps come back as UTC timestamps; workbench turns them
-- into Unix epoch milliseconds as the API does.
WITH latest AS (
  SELECT te.participant_id, te.to_phase, te.updated_at,
         row_number() OVER (PARTITION BY te.participant_id, te.to_phase ORDER BY te.id DESC) AS rank_in_phase
  FROM transition_event te
)
SELECT p.code AS identifier,
       p.phase,
       p.extension_activated_at AS activated_browser_extension_at,
       max(CASE WHEN l.to_phase = 1 THEN l.updated_at END) AS entered_intervention_at,
       max(CASE WHEN l.to_phase = 2 THEN l.updated_at END) AS entered_post_intervention_at,
       max(CASE WHEN l.to_phase = 0 THEN l.updated_at END) AS was_reset_to_pre_intervention_at
FROM participant p
LEFT JOIN latest l ON l.participant_id = p.id AND l.rank_in_phase = 1
WHERE (:all_codes OR p.code IN :codes)
GROUP BY p.id, p.code, p.phase, p.extension_activated_at
ORDER BY p.id
